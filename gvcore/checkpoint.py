"""Checkpoints: our ``.safetensors`` format (written atomically) and safe loading of third-party weights.

* :func:`save_checkpoint` writes a model's ``state_dict`` plus string metadata (``docs/ARCHITECTURE.md``,
  "Checkpoint format") to a temporary file in the target directory, fsyncs it and renames it over ``path``; on
  any failure the temporary file is removed and a previous checkpoint at ``path`` is left untouched.
* :func:`load_model` reads our format, plain state dicts of our own architectures (``.pth``/``.pt``/``.ckpt``
  or ``.safetensors`` without our metadata, e.g. BasicSR EDSR or the official GV VDSR) and anything spandrel
  recognises (ESRGAN/RRDB, SwinIR, RCAN, HAT, SPAN, Real-ESRGAN compact, ...).

Pickles are never executed: ``.pth`` files are read with ``torch.load(weights_only=True)``, whose unpickler
only rebuilds tensors and plain containers; any other global (``os.system``, ``subprocess.*``, a class) makes
the load fail with :class:`CheckpointError` before anything runs. TorchScript archives are refused too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from gvcore._validation import check_floating_image
from gvcore.atomic import atomic_write
from gvcore.models import MODELS, RECOGNISERS, build_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "CheckpointError",
    "CheckpointMeta",
    "SpandrelModel",
    "load_model",
    "save_checkpoint",
    "torch_load_failure",
]

#: value of the ``format`` metadata key of our checkpoints.
CHECKPOINT_FORMAT = "gvcore-checkpoint/1"
#: files larger than this are refused by :func:`load_model` unless ``max_bytes`` says otherwise.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: suffixes :func:`load_model` accepts (``.safetensors``: ours or foreign; the others: pickled state dicts).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".ckpt")
#: keys under which training frameworks nest the state dict, in order of preference.
_WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net")


class CheckpointError(ValueError):
    """A checkpoint cannot be written or loaded; the message says which file and why."""


def _current_version() -> str:
    from gvcore import __version__

    return str(__version__)


_JSON_KEYS = ("arch_kwargs", "loss", "metrics")
_INT_KEYS = ("steps", "seed")
_TEXT_KEYS = ("data", "label", "degradation")


@dataclass(frozen=True)
class CheckpointMeta:
    """The metadata of a gvcore checkpoint (``docs/ARCHITECTURE.md``, "Checkpoint format").

    One record for saving, loading, the dashboard's catalog, evaluation and the reproduction.

    In the file every value is a string (safetensors metadata): JSON for ``arch_kwargs``/``loss``/``metrics``,
    decimal for ``scale``/``steps``/``seed``, ``""`` for a missing optional value.

    Example:
        >>> meta = CheckpointMeta("espcn", 2, loss={"pixel": "l1", "gv_weight": 0.03}, steps=10)
        >>> meta.recipe, meta.gv_weight, CheckpointMeta.from_strings(meta.to_strings()) == meta
        ('l1+gv', 0.03, True)
    """

    arch: str
    scale: int
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] | None = None
    data: str | None = None
    steps: int | None = None
    seed: int | None = None
    metrics: dict[str, Any] | None = None
    label: str | None = None
    degradation: str | None = None
    dtype: str = "float32"
    gvcore_version: str = field(default_factory=lambda: _current_version())

    @property
    def gv_weight(self) -> float:
        """The GV loss weight λ it was trained with (0 without the GV term or a loss record)."""
        return float((self.loss or {}).get("gv_weight") or 0.0)

    @property
    def recipe(self) -> str:
        """The loss recipe (``"l1"``, ``"l1+gv"``, ...; ``""`` when unknown)."""
        loss = self.loss or {}
        if loss.get("recipe"):
            return str(loss["recipe"])
        return "+".join(x for x in (loss.get("pixel"), "gv" if loss.get("gv_weight") else None) if x)

    def to_strings(self) -> dict[str, str]:
        """The safetensors metadata (string values), with ``format``."""

        def text(value: Any) -> str:
            return "" if value is None else str(value)

        strings = {"format": CHECKPOINT_FORMAT, "arch": self.arch, "scale": str(int(self.scale))}
        strings |= {key: json.dumps(getattr(self, key), sort_keys=True) for key in _JSON_KEYS}
        strings |= {key: text(getattr(self, key)) for key in (*_INT_KEYS, *_TEXT_KEYS)}
        return strings | {"dtype": self.dtype, "gvcore_version": self.gvcore_version}

    @classmethod
    def from_strings(cls, raw: Mapping[str, str], default_label: str | None = None) -> CheckpointMeta:
        """Parse safetensors metadata of our format.

        Raises:
            ValueError: a missing ``arch``/``scale`` or a malformed value (the message names the key).
        """
        values: dict[str, Any] = {}
        for key in ("arch", "scale"):
            if not raw.get(key):
                raise ValueError(f"metadata key {key!r} is missing")
        try:
            values["scale"] = int(raw["scale"])
            for key in _INT_KEYS:
                values[key] = int(raw[key]) if raw.get(key) else None
            for key in _JSON_KEYS:
                values[key] = json.loads(raw[key]) if raw.get(key) else None
        except ValueError as err:
            raise ValueError(f"malformed metadata value ({err})") from err
        for key in _JSON_KEYS:
            if values[key] is not None and not isinstance(values[key], dict):
                raise ValueError(f"metadata key {key!r} must hold a JSON object; got {values[key]!r}")
        values["arch_kwargs"] = values["arch_kwargs"] or {}
        values |= {key: raw.get(key) or None for key in _TEXT_KEYS}
        values["label"] = values["label"] or default_label
        return cls(
            arch=str(raw["arch"]),
            dtype=raw.get("dtype") or "float32",
            gvcore_version=raw.get("gvcore_version") or "",
            **values,
        )

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any], default_label: str | None = None) -> CheckpointMeta:
        """The record of a :func:`load_model` metadata dict (ours, or a foreign file's ``arch``/``scale``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in metadata.items() if k in names}
        values["arch_kwargs"] = dict(values.get("arch_kwargs") or {})
        if not isinstance(values.get("loss"), (dict, type(None))):
            values["loss"] = None
        values["label"] = values.get("label") or default_label
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CheckpointMeta:
        """Read the record from a ``.safetensors`` file's header only (no weights are loaded).

        Raises:
            CheckpointError: not a readable ``.safetensors`` file, or not in our format.
        """
        from safetensors import safe_open

        source = Path(path)
        try:
            with safe_open(str(source), framework="pt") as handle:
                raw = dict(handle.metadata() or {})
        except Exception as err:  # safetensors raises its own SafetensorError, OSError or ValueError
            raise CheckpointError(f"{str(source)!r} is not a readable .safetensors file: {err}") from err
        if not raw.get("format", "").startswith("gvcore-checkpoint/"):
            raise CheckpointError(f"{str(source)!r} is not a gvcore checkpoint (no gvcore metadata)")
        try:
            return cls.from_strings(raw, source.stem)
        except ValueError as err:
            raise CheckpointError(f"{str(source)!r} has malformed gvcore metadata: {err}") from err

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain dict :func:`load_model` returns for our format (without ``source``)."""
        return {**dataclasses.asdict(self), "format": CHECKPOINT_FORMAT}

    def save_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`save_checkpoint` that write this record again."""
        keys = (
            "arch",
            "arch_kwargs",
            "scale",
            "loss",
            "data",
            "steps",
            "seed",
            "metrics",
            "label",
            "degradation",
        )
        return {key: getattr(self, key) for key in keys}


# --------------------------------------------------------------------------------------------------- saving
def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    scale: int | None = None,
    loss: Mapping[str, Any] | None = None,
    data: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    label: str | None = None,
    half: bool = False,
    degradation: str | None = None,
) -> Path:
    """Write ``model`` to ``path`` (``.safetensors``) atomically, with the metadata of our checkpoint format.

    Args:
        path: target file; must end in ``.safetensors``; its directory must exist.
        model: the network; its ``state_dict`` is stored (non-persistent buffers are not).
        arch: a :data:`gvcore.models.MODELS` key; default ``model.arch`` (set by ``build_model``).
        arch_kwargs: constructor options (JSON-serialisable); default ``model.arch_kwargs``.
        scale: upscaling factor; default ``model.scale``.
        loss: the loss recipe, e.g. ``{"pixel": "l1", "gv_weight": 0.1, "gv_patch_size": 8}``.
        data: what it was trained on (``"bundled"``, a folder, ...).
        steps: optimisation steps done.
        seed: the run's seed.
        metrics: final validation metrics, e.g. ``{"psnr": 30.1, "ssim": 0.91}``.
        label: display name; default the file stem.
        half: store floating tensors as float16 (loaded back as float32).
        degradation: how its training LR images were made (``"standard"`` bicubic or ``"official"`` bilinear,
            :func:`gvcore.data.make_lr`); evaluation refuses to score it under the other protocol.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: bad suffix, unknown ``arch``, options not JSON-serialisable, missing or unwritable
            directory, or a failed write (e.g. disk full); nothing is left behind and an existing file at
            ``path`` is unchanged.

    Example:
        >>> import tempfile, gvcore
        >>> model = gvcore.build_model("espcn", 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = save_checkpoint(f"{d}/espcn.safetensors", model, steps=0)
        ...     loaded, meta = load_model(p)
        >>> meta["arch"], meta["scale"], meta["steps"], loaded.training
        ('espcn', 2, 0, False)
    """
    from safetensors.torch import save as safetensors_bytes

    target = Path(path)
    if target.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint path must end in .safetensors; got {str(target)!r}")
    arch = arch if arch is not None else getattr(model, "arch", None)
    if arch not in MODELS:
        valid = ", ".join(repr(n) for n in MODELS)
        raise CheckpointError(f"arch must be one of {valid}; got {arch!r}")
    arch_kwargs = dict(arch_kwargs if arch_kwargs is not None else getattr(model, "arch_kwargs", {}))
    scale = scale if scale is not None else getattr(model, "scale", None)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise CheckpointError(f"scale must be a positive int (or the model must have one); got {scale!r}")

    def as_json_object(name: str, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return dict(json.loads(json.dumps(dict(value), sort_keys=True)))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{name} must be JSON-serialisable; got {value!r} ({err})") from err

    record = CheckpointMeta(
        arch=str(arch),
        scale=scale,
        arch_kwargs=as_json_object("arch_kwargs", arch_kwargs) or {},
        loss=as_json_object("loss", loss),
        data=None if data is None else str(data),
        steps=None if steps is None else int(steps),
        seed=None if seed is None else int(seed),
        metrics=as_json_object("metrics", metrics),
        label=target.stem if label is None else str(label),
        degradation=None if degradation is None else str(degradation),
        dtype="float16" if half else "float32",
    )
    metadata = record.to_strings()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[key] = tensor.contiguous().clone()
    _atomic_write(target, safetensors_bytes(tensors, metadata=metadata))
    return target


def _write_all(handle: IO[bytes], payload: bytes) -> None:
    """Write ``payload`` to ``handle`` (a seam for tests that simulate a full disk)."""
    handle.write(payload)


def _atomic_write(target: Path, payload: bytes) -> None:
    """Write ``payload`` to a temp file beside ``target``, fsync, rename over ``target``; clean up on failure."""
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise CheckpointError(
            f"cannot write checkpoint {str(target)!r}: directory {str(directory)!r} does not exist"
        )
    try:
        atomic_write(target, lambda handle: _write_all(handle, payload), mode=0o644)
    except PermissionError as err:
        raise CheckpointError(
            f"cannot write checkpoint {str(target)!r}: directory {str(directory)!r} is not writable ({err.strerror})"
        ) from err
    except OSError as err:
        raise CheckpointError(
            f"could not write checkpoint {str(target)!r}: {err.strerror or err}; "
            "no partial file was left and any previous checkpoint there is unchanged"
        ) from err


# -------------------------------------------------------------------------------------------------- loading
def load_model(
    path: str | os.PathLike[str],
    scale: int | None = None,
    device: str | torch.device = "cpu",
    arch: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint as an ``nn.Module`` in eval mode, float32, on ``device``.

    Args:
        path: ``.safetensors`` (ours, or a foreign state dict) or ``.pth`` / ``.pt`` / ``.ckpt`` (state dict,
            possibly nested under ``params_ema`` / ``params`` / ``state_dict`` / ``model``).
        scale: the expected upscaling factor; a checkpoint of another scale is refused. Required for foreign
            VDSR weights (VDSR works at any scale), unless the file name says it (``vdsr_2x.pth``, ``x4``).
        device: where to put the model.
        arch: the expected architecture: a :data:`~gvcore.models.MODELS` key or a spandrel architecture id
            (``"ESRGAN"``, ``"Compact"``, ...); a checkpoint of another architecture is refused.
        max_bytes: larger files are refused before anything is read.

    Returns:
        ``(model, metadata)``. The model maps ``(B, 3, h, w)`` in [0, 1] to ``(B, 3, s*h, s*w)`` and has
        ``scale`` and ``arch``. For our format, ``metadata`` holds every key of the format with JSON values
        parsed (``arch_kwargs``/``loss``/``metrics`` dicts or ``None``, ``scale``/``steps``/``seed`` ints or
        ``None``) plus ``"source": "gvcore"``; for foreign files it is ``{"arch", "scale", "source", "label"}``
        (``source`` ``"state_dict"`` for our own architectures, ``"spandrel"`` otherwise; ``arch_kwargs`` too
        for the former).

    Raises:
        CheckpointError: missing, empty, oversized, truncated or non-checkpoint file; unsupported suffix; a
            pickle that references anything but tensors and plain containers (nothing is executed); unknown
            architecture; ``scale`` or ``arch`` not matching the checkpoint.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CheckpointError(
            f"unsupported checkpoint suffix {source.suffix!r} for {str(source)!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not source.is_file():
        raise CheckpointError(f"checkpoint not found: {str(source)!r}")
    size = source.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {str(source)!r} is empty")
    if size > max_bytes:
        raise CheckpointError(
            f"checkpoint {str(source)!r} is {size} bytes, over the limit of {max_bytes} (raise max_bytes to allow it)"
        )
    torch_device = torch.device(device)

    if suffix == ".safetensors":
        tensors, file_metadata = _read_safetensors(source)
        if file_metadata.get("format", "").startswith("gvcore-checkpoint/"):
            model, metadata = _load_ours(source, tensors, file_metadata, scale, arch)
            return model.to(torch_device).eval(), metadata
        state_dict: dict[str, torch.Tensor] = tensors
    else:
        state_dict = _unwrap_state_dict(source, _read_pickle(source, max_bytes))

    model, metadata = _load_foreign(source, state_dict, scale, arch)
    return model.to(torch_device).eval(), metadata


def _read_safetensors(source: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(source), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own SafetensorError, OSError or ValueError
        raise CheckpointError(
            f"{str(source)!r} is not a valid .safetensors file (truncated, corrupt or another format): {err}"
        ) from err
    return tensors, metadata


#: a zip record inflating more than this many times its stored size is a decompression bomb (torch.save stores
#: records uncompressed; ordinary deflate of weights gains far less).
MAX_ZIP_RATIO = 100


def _check_zip_sizes(source: Path, archive: zipfile.ZipFile, max_bytes: int) -> None:
    """Refuse, from the zip directory alone, archives that would inflate past ``max_bytes`` or like a bomb."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise CheckpointError(
            f"{str(source)!r} would expand to {total} bytes, over the limit of {max_bytes} "
            "(raise max_bytes to allow it)"
        )
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_ZIP_RATIO * max(
            1, info.compress_size
        ):
            raise CheckpointError(
                f"{str(source)!r} holds a record ({info.filename}) that inflates {info.file_size} bytes from "
                f"{info.compress_size}: refused as a decompression bomb (torch.save does not compress)"
            )


def _read_pickle(source: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a specific :class:`CheckpointError`.

    Zip archives are checked from their directory first (:func:`_check_zip_sizes`): nothing is inflated before
    the declared sizes are known to fit ``max_bytes``.
    """
    with source.open("rb") as handle:
        head = handle.read(4)
    is_zip = head == b"PK\x03\x04"
    if not is_zip and not head.startswith(b"\x80"):
        raise CheckpointError(
            f"{str(source)!r} is not a PyTorch checkpoint (it starts with {head!r}, "
            "neither a torch.save zip archive nor a pickle)"
        )
    if is_zip:
        try:
            with zipfile.ZipFile(source) as archive:
                names = archive.namelist()
                _check_zip_sizes(source, archive, max_bytes)
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointError(f"{str(source)!r} is truncated or corrupt ({err})") from err
        if any(name.endswith("constants.pkl") for name in names):
            raise CheckpointError(
                f"{str(source)!r} is a TorchScript archive; only state dicts are supported (TorchScript runs code)"
            )
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError from the zip reader, ...
        raise CheckpointError(torch_load_failure(str(source), err)) from err


def torch_load_failure(name: str, err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed on the file ``name``, as one line.

    Never repeats torch's advice to retry with ``weights_only=False`` (which would run the file's code).

    Example:
        >>> torch_load_failure("resume.pt", EOFError())
        "'resume.pt' is truncated or corrupt (EOFError)"
    """
    text = str(err)
    match = re.search(r"(?:Unsupported global|unsupported GLOBAL|GLOBAL) *:? *(?:GLOBAL )?([\w.]+)", text)
    if isinstance(err, pickle.UnpicklingError) and (match or "Unsupported" in text):
        culprit = f" (it references {match.group(1)})" if match else ""
        return (
            f"refused to load {name!r}: its pickle asks for objects other than tensors and plain containers"
            f"{culprit}; gvcore never executes pickled code. Re-save it as a plain state dict or .safetensors"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(err, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed"):
        # torch wraps the unpickler's own reason in advice; keep the reason only
        reason = next((line for line in lines if line.startswith("WeightsUnpickler error:")), "")
        lines = [reason.removeprefix("WeightsUnpickler error:").strip()] if reason else []
    first = next((line for line in lines if "weights_only" not in line), "") or type(err).__name__
    return f"{name!r} is truncated or corrupt ({first[:200]})"


def _unwrap_state_dict(source: Path, obj: Any) -> dict[str, torch.Tensor]:
    """Find the tensor dict in what ``torch.load`` returned (nested under a known key or not)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{str(source)!r} does not hold a state dict (found {type(obj).__name__})")
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
        obj = next(iter(obj.values()))
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{str(source)!r} does not hold a state dict (no tensors found)")
    for prefix in ("module.", "netG."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def _float32(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def _check_scale(source: Path, requested: int | None, found: int) -> None:
    if requested is not None and requested != found:
        raise CheckpointError(
            f"scale mismatch: asked for x{requested} but {str(source)!r} is a x{found} checkpoint"
        )


#: largest integer architecture option (blocks, layers, features) a checkpoint may ask for.
MAX_ARCH_OPTION = 1024


def _build_matching(
    source: Path, name: str, scale: int, kwargs: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> nn.Module:
    """Build ``name`` only after checking that its parameters are exactly the file's tensors.

    The check (names and shapes) runs on the ``meta`` device, without memory: a small file whose metadata or
    keys describe a huge model is refused here, before anything is allocated.
    """
    for key, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ARCH_OPTION:
            raise CheckpointError(
                f"{str(source)!r} asks for {name!r} with {key}={value}; options are limited to "
                f"0..{MAX_ARCH_OPTION} (a file that small cannot hold such a model)"
            )
    try:
        with torch.device("meta"):
            skeleton = build_model(name, scale, **kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build {name!r} from the options in {str(source)!r}: {err}") from err
    except RuntimeError as err:  # e.g. absurd sizes rejected even on the meta device
        raise CheckpointError(
            f"the options in {str(source)!r} describe an unbuildable {name!r}: {err}"
        ) from err
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in tensors.items()}
    if wanted != given:
        missing = sorted(set(wanted) - set(given))
        extra = sorted(set(given) - set(wanted))
        shapes = sorted(k for k in set(wanted) & set(given) if wanted[k] != given[k])
        params = sum(math.prod(shape) for shape in wanted.values())
        raise CheckpointError(
            f"{str(source)!r} does not hold the weights of the {name!r} its metadata or keys describe "
            f"({params:,} parameters): {len(missing)} missing tensor(s) {missing[:3]}, {len(extra)} unexpected "
            f"{extra[:3]}, {len(shapes)} of another shape {shapes[:3]}"
        )
    try:
        return build_model(name, scale, **kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build {name!r} from the options in {str(source)!r}: {err}") from err


def _strict_load(source: Path, model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{str(source)!r} holds non-finite weights (NaN or Inf) in {len(bad)} tensor(s), e.g. {bad[:3]}: "
            "the run that wrote it diverged"
        )
    try:
        model.load_state_dict(_float32(state_dict), strict=True)
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise CheckpointError(
            f"weights in {str(source)!r} do not fit the architecture: {first_line} ..."
        ) from err


def _load_ours(
    source: Path,
    tensors: dict[str, torch.Tensor],
    raw: dict[str, str],
    scale: int | None,
    arch: str | None,
) -> tuple[nn.Module, dict[str, Any]]:
    if raw["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(source)!r} has format {raw['format']!r}; this gvcore reads {CHECKPOINT_FORMAT!r}"
        )
    try:
        record = CheckpointMeta.from_strings(raw, source.stem)
    except ValueError as err:
        raise CheckpointError(f"{str(source)!r} has malformed gvcore metadata ({err})") from err
    name = record.arch
    metadata = record.as_dict()
    metadata["source"] = "gvcore"
    if name not in MODELS:
        raise CheckpointError(
            f"unknown architecture {name!r} in {str(source)!r}; this gvcore knows {', '.join(MODELS)}"
        )
    if arch is not None and arch != name:
        raise CheckpointError(f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {name!r}")
    _check_scale(source, scale, metadata["scale"])
    model = _build_matching(source, name, metadata["scale"], metadata["arch_kwargs"], tensors)
    _strict_load(source, model, tensors)
    return model, metadata


# ------------------------------------------------------------------------------ foreign state dicts


def _scale_from_name(source: Path) -> int | None:
    match = re.search(r"(?:^|[^a-z0-9])(?:x(\d)|(\d)x)(?:[^a-z0-9]|$)", source.stem.lower())
    return int(match.group(1) or match.group(2)) if match else None


def _load_foreign(
    source: Path, state_dict: dict[str, torch.Tensor], scale: int | None, arch: str | None
) -> tuple[nn.Module, dict[str, Any]]:
    family = None if arch is None else arch.split("-")[0]
    for name, recognise in RECOGNISERS.items():
        found = recognise(state_dict)
        if found is None:
            continue
        if arch is not None and family != name:
            raise CheckpointError(
                f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {name!r} weights"
            )
        kwargs, found_scale = found
        if found_scale is None:
            found_scale = scale if scale is not None else _scale_from_name(source)
            if found_scale is None:
                raise CheckpointError(
                    f"{str(source)!r} holds {name!r} weights, which work at any scale, and neither the file "
                    "nor its name says which; pass scale="
                )
        _check_scale(source, scale, found_scale)
        model = _build_matching(source, name, found_scale, kwargs, state_dict)
        _strict_load(source, model, state_dict)
        metadata = {
            "arch": name,
            "arch_kwargs": kwargs,
            "scale": found_scale,
            "source": "state_dict",
            "label": source.stem,
        }
        return model, metadata
    if arch in MODELS:
        raise CheckpointError(f"architecture mismatch: {str(source)!r} does not hold {arch!r} weights")
    return _load_spandrel(source, state_dict, scale, arch)


class SpandrelModel(nn.Module):
    """An ``nn.Module`` around a spandrel ``ImageModelDescriptor``, with gvcore's model contract.

    Inputs are padded as the architecture requires (reflect, then replicate) and the output cropped back; the
    output is not clamped (like gvcore's own models).

    Shape:
        - Input: ``(B, 3, h, w)``, RGB in [0, 1], the dtype of the weights (float32).
        - Output: ``(B, 3, scale*h, scale*w)``.
    """

    def __init__(self, descriptor: Any) -> None:
        """Wrap the descriptor's network, taking its scale, architecture id and size requirements."""
        super().__init__()
        self.net: nn.Module = descriptor.model
        self.scale = int(descriptor.scale)
        self.arch = str(descriptor.architecture.id)
        self.arch_kwargs: dict[str, Any] = {}
        self.size_requirements = descriptor.size_requirements
        self._call_fn = descriptor._call_fn  # architecture-specific call, e.g. for models with extra inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(B, 3, h, w)`` to ``(B, 3, scale*h, scale*w)``."""
        check_floating_image("x", x, channels=3)
        height, width = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(width, height)
        if pad_w or pad_h:
            reflect_w, reflect_h = min(pad_w, width - 1), min(pad_h, height - 1)
            x = nn.functional.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
            x = nn.functional.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")
        out = self._call_fn(self.net, x)
        return out[..., : height * self.scale, : width * self.scale]

    def extra_repr(self) -> str:
        """Architecture and scale, shown in the module's ``repr``."""
        return f"arch={self.arch!r}, scale={self.scale}"


def _import_spandrel() -> Any:
    """``import spandrel`` without leaving an empty ``torchinductor_<user>`` folder in the temp directory.

    Importing spandrel imports ``torch._dynamo``, which creates TorchInductor's cache folder even though nothing
    is compiled; a folder that this import created and left empty is removed again.
    """
    import sys

    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    preset = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    before = {p.name for p in Path(tempfile.gettempdir()).glob("torchinductor_*")}
    import spandrel

    if preset is None:
        for folder in Path(tempfile.gettempdir()).glob("torchinductor_*"):
            if folder.name not in before and folder.is_dir():
                with contextlib.suppress(OSError):  # not empty (another process wrote there): leave it
                    folder.rmdir()
    return spandrel


def _load_spandrel(
    source: Path, state_dict: dict[str, torch.Tensor], scale: int | None, arch: str | None
) -> tuple[nn.Module, dict[str, Any]]:
    try:
        spandrel = _import_spandrel()
    except ImportError as err:
        raise CheckpointError(
            f"unknown architecture in {str(source)!r}: not a gvcore model, and spandrel (needed for "
            "third-party architectures) is not installed: pip install 'gvcore[models]'"
        ) from err
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(_float32(state_dict))
    except spandrel.UnsupportedModelError as err:
        raise CheckpointError(
            f"unknown architecture in {str(source)!r}: neither a gvcore model ({', '.join(MODELS)}) nor one "
            f"spandrel recognises (first keys: {', '.join(list(state_dict)[:4])})"
        ) from err
    except Exception as err:  # spandrel recognised the keys but the shapes do not fit its model
        raise CheckpointError(
            f"spandrel could not load {str(source)!r}: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise CheckpointError(
            f"{str(source)!r} is a {descriptor.architecture.id} model, not an image-to-image one"
        )
    found = str(descriptor.architecture.id)
    if arch is not None and arch.lower() != found.lower():
        raise CheckpointError(
            f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {found!r}"
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise CheckpointError(
            f"{str(source)!r} is a {found} model with {descriptor.input_channels} input and "
            f"{descriptor.output_channels} output channels; gvcore models map RGB to RGB"
        )
    _check_scale(source, scale, int(descriptor.scale))
    model = SpandrelModel(descriptor.to(torch.float32))
    metadata = {"arch": found, "scale": int(descriptor.scale), "source": "spandrel", "label": source.stem}
    return model, metadata
