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

The format's record lives in :mod:`gvcore.checkpoint.meta`, the restricted ``.pth`` reader in
:mod:`gvcore.checkpoint.safe_pickle`, model building in :mod:`gvcore.checkpoint.build` and the recognition of
foreign weights (our architectures' key sets, spandrel) in :mod:`gvcore.checkpoint.foreign`; every public name
is importable from here.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from gvcore.atomic import atomic_write
from gvcore.checkpoint.build import MAX_ARCH_OPTION as MAX_ARCH_OPTION
from gvcore.checkpoint.build import _build_matching, _check_scale, _strict_load
from gvcore.checkpoint.foreign import SpandrelModel, _import_spandrel, _load_foreign
from gvcore.checkpoint.meta import CHECKPOINT_FORMAT, CheckpointError, CheckpointMeta, is_gvcore_format
from gvcore.checkpoint.safe_pickle import (
    DEFAULT_MAX_BYTES,
    _read_pickle,
    _unwrap_state_dict,
    torch_load_failure,
)
from gvcore.checkpoint.safe_pickle import MAX_ZIP_RATIO as MAX_ZIP_RATIO
from gvcore.models import MODELS

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_SUFFIXES",
    "CheckpointError",
    "CheckpointMeta",
    "SpandrelModel",
    "load_model",
    "read_checkpoint_bytes",
    "save_checkpoint",
    "torch_load_failure",
]

#: suffixes :func:`load_model` accepts (``.safetensors``: ours or foreign; the others: pickled state dicts).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".ckpt")


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
            :func:`gvcore.protocol.make_lr`); evaluation refuses to score it under the other protocol.

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
    content: bytes | None = None,
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
        content: the file's bytes, already read (:func:`read_checkpoint_bytes`); ``path`` then only names it
            (suffix, messages, VDSR's scale from the name). Without it the file is read once into memory and
            the model is built from that buffer.

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
    data = read_checkpoint_bytes(source, max_bytes) if content is None else bytes(content)
    _check_name_and_size(source, len(data), max_bytes)
    torch_device = torch.device(device)

    if source.suffix.lower() == ".safetensors":
        tensors, file_metadata = _read_safetensors(source, data)
        if is_gvcore_format(file_metadata):
            model, metadata = _load_ours(source, tensors, file_metadata, scale, arch)
            return model.to(torch_device).eval(), metadata
        state_dict: dict[str, torch.Tensor] = tensors
    else:
        state_dict = _unwrap_state_dict(source, _read_pickle(source, max_bytes, data))

    model, metadata = _load_foreign(source, state_dict, scale, arch)
    return model.to(torch_device).eval(), metadata


def _check_name_and_size(source: Path, size: int, max_bytes: int) -> None:
    if source.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise CheckpointError(
            f"unsupported checkpoint suffix {source.suffix!r} for {str(source)!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if size == 0:
        raise CheckpointError(f"checkpoint {str(source)!r} is empty")
    if size > max_bytes:
        raise CheckpointError(
            f"checkpoint {str(source)!r} is {size} bytes, over the limit of {max_bytes} (raise max_bytes to allow it)"
        )


def read_checkpoint_bytes(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A checkpoint file's bytes, read once through one open handle (the buffer :func:`load_model` builds from).

    Hash these bytes and pass them as ``load_model(path, content=...)``: the hash then describes exactly the
    model that was built, even if the file is replaced before, during or after the read.

    Raises:
        CheckpointError: unsupported suffix, missing, not a regular file, empty, or over ``max_bytes`` (checked
            on the open handle, and again on what was read, so a file growing meanwhile is refused too).
    """
    source = Path(path)
    _check_name_and_size(source, 1, max_bytes)
    try:
        with source.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise CheckpointError(f"checkpoint {str(source)!r} is not a regular file")
            _check_name_and_size(source, info.st_size, max_bytes)
            data = handle.read(max_bytes + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise CheckpointError(f"checkpoint not found: {str(source)!r}") from None
    except CheckpointError:
        raise
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {str(source)!r}: {err.strerror or err}") from err
    _check_name_and_size(source, len(data), max_bytes)
    return data


def _read_safetensors(source: Path, data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a ``.safetensors`` buffer (header checked by safetensors itself)."""
    from safetensors.torch import load

    try:
        tensors = load(data)
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        metadata = header.get("__metadata__") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("its __metadata__ is not a map of strings")
    except Exception as err:  # safetensors raises its own SafetensorError, OSError or ValueError
        raise CheckpointError(
            f"{str(source)!r} is not a valid .safetensors file (truncated, corrupt or another format): {err}"
        ) from err
    return tensors, {str(k): v for k, v in metadata.items()}


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
    if name not in MODELS and _is_spandrel_arch(name):  # a published model (gvcore.zoo.registry)
        # cycle: save_published verifies its file with load_model, and load_model dispatches published files to it
        from gvcore.checkpoint.published import load_published

        return load_published(source, tensors, record, scale, arch)
    if name not in MODELS:
        raise CheckpointError(
            f"unknown architecture {name!r} in {str(source)!r}; this gvcore knows {', '.join(MODELS)} "
            "(and spandrel's architectures, when spandrel is installed)"
        )
    if arch is not None and arch != name:
        raise CheckpointError(f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {name!r}")
    _check_scale(source, scale, metadata["scale"])
    model = _build_matching(source, name, metadata["scale"], metadata["arch_kwargs"], tensors)
    _strict_load(source, model, tensors)
    return model, metadata


def _is_spandrel_arch(name: str) -> bool:
    """Whether ``name`` is the id of an architecture spandrel supports (``False`` without spandrel)."""
    try:
        spandrel = _import_spandrel()
    except ImportError:
        return False
    return name in {support.architecture.id for support in spandrel.MAIN_REGISTRY.architectures()}
