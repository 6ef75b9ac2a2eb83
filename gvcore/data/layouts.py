"""Data set layouts on disk: which HR images a ``--data`` folder holds and which LR files come with them.

Auto-detected by :func:`detect_layout` (first match wins):

- ``div2k``: a folder ``X_HR`` (or a folder holding ``X_HR`` sub-folders) with a sibling
  ``X_LR_bicubic/X{s}/{name}x{s}.png`` (DIV2K);
- ``basicsr``: a BasicSR benchmark folder (``Set5/``, ``Urban100/`` ...) holding ``GTmod12/`` or ``HR/`` and
  LR files in ``LRbicx{s}/`` or ``LR_bicubic/X{s}/`` (named as the HR file, or ``{name}x{s}``); the
  ``GTmod12/`` or ``HR/`` folder itself, given directly, finds the same LR siblings;
- ``folder``: a plain folder of HR images (LR synthesised per protocol by :func:`gvcore.protocol.prepare_pair`).

Explicit pairs (:func:`paired_sources`, ``gvcore eval --hr DIR --lr DIR``) match HR and LR files by stem
(an LR stem may carry the ``x{s}`` suffix). Given LR files are used as they are, never re-synthesised; the
size check (:func:`check_lr_size`) wants HR = ``s`` x LR after BasicSR's crop of HR to a multiple of ``s``.

:func:`find_named_datasets` finds the standard benchmark sets (Set5, Set14, B100, Urban100, Manga109,
DIV2K-val) under a data root, for the dashboard's Benchmark page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: file suffixes read as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageSource:
    """One HR image on disk and, where the layout ships them (:mod:`gvcore.data.layouts`), its LR images by scale."""

    name: str
    hr_path: Path
    lr_paths: dict[int, Path] = field(default_factory=dict)
    #: the LR files were given explicitly (``--lr DIR``): used under every protocol, not only the standard one
    lr_explicit: bool = False


__all__ = [
    "BENCHMARK_NAMES",
    "DatasetLayout",
    "LayoutKind",
    "check_lr_size",
    "detect_layout",
    "find_named_datasets",
    "list_images",
    "paired_sources",
]

LayoutKind = Literal["div2k", "basicsr", "folder"]

#: HR folder names of a BasicSR benchmark set, in order of preference.
_BASICSR_HR = ("GTmod12", "HR")
#: the standard benchmark sets and the folder names they go by (lower case).
BENCHMARK_NAMES: dict[str, tuple[str, ...]] = {
    "Set5": ("set5",),
    "Set14": ("set14",),
    "B100": ("b100", "bsd100", "bsds100"),
    "Urban100": ("urban100",),
    "Manga109": ("manga109",),
    "DIV2K-val": ("div2k_valid_hr", "div2k_val_hr", "div2k-val", "div2k_val", "div2k_valid"),
}


@dataclass(frozen=True)
class DatasetLayout:
    """A detected layout: its kind, the HR folder and the images (with their LR files by scale)."""

    kind: LayoutKind
    hr_dir: Path
    sources: list[ImageSource]


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (:data:`gvcore.data.layouts.IMAGE_EXTENSIONS`), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _by_stem(folder: Path, scale: int) -> dict[str, Path]:
    """LR files of ``folder`` keyed by the HR stem they belong to (``name`` or ``name`` + ``x{scale}``)."""
    found: dict[str, Path] = {}
    suffix = f"x{scale}"
    for path in list_images(folder):
        stem = path.stem
        key = stem[: -len(suffix)] if stem.lower().endswith(suffix) and len(stem) > len(suffix) else stem
        if key in found:
            raise ValueError(
                f"LR folder {folder} has two files for image {key!r}: {found[key].name}, {path.name}"
            )
        found[key] = path
    return found


def _scale_dirs(root: Path, pattern: str) -> dict[int, Path]:
    """``{s: folder}`` for sub-folders of ``root`` named like ``pattern`` with ``{s}`` an integer."""
    regex = re.compile("^" + re.escape(pattern).replace(r"\{s\}", r"(\d+)") + "$", re.IGNORECASE)
    dirs: dict[int, Path] = {}
    if root.is_dir():
        for child in sorted(root.iterdir()):
            match = regex.match(child.name)
            if child.is_dir() and match:
                dirs[int(match.group(1))] = child
    return dirs


def _sources_with_lr(hr_dir: Path, lr_dirs: dict[int, Path]) -> list[ImageSource]:
    lr_files = {s: _by_stem(folder, s) for s, folder in lr_dirs.items()}
    sources = []
    for path in list_images(hr_dir):
        lr_paths = {s: files[path.stem] for s, files in lr_files.items() if path.stem in files}
        sources.append(ImageSource(path.stem, path, lr_paths))
    return sources


def _div2k_hr_dir(folder: Path, split: str) -> Path | None:
    """The ``*_HR`` folder of a DIV2K-style layout rooted at (or being) ``folder``, else ``None``."""
    if folder.name.endswith("_HR"):
        return folder
    candidates = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.endswith("_HR"))
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    wanted = ("train",) if split == "train" else ("valid", "val", "test")
    for candidate in candidates:
        if any(word in candidate.name.lower() for word in wanted):
            return candidate
    return candidates[0]


def _basicsr_hr_dir(folder: Path) -> Path | None:
    for name in _BASICSR_HR:
        if (folder / name).is_dir():
            return folder / name
    return None


def detect_layout(folder: str | Path, split: Literal["train", "test"] = "test") -> DatasetLayout:
    """Detect the layout of a data folder (module docstring) and list its images.

    Args:
        folder: the ``--data`` folder.
        split: which DIV2K ``*_HR`` folder to use when there are several (``train`` or a valid/test one).

    Returns:
        The :class:`DatasetLayout`; ``sources`` may be empty (the caller says so).

    Raises:
        ValueError: ``folder`` is not a folder, or an LR folder has two files for one image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"data folder {root} does not exist")
    hr_dir = _basicsr_hr_dir(root)
    set_root = root
    if hr_dir is None and root.name in _BASICSR_HR:  # the set's HR folder itself: its LR siblings still count
        hr_dir, set_root = root, root.parent
    if hr_dir is not None:
        lr_dirs = _scale_dirs(set_root, "LRbicx{s}") | _scale_dirs(set_root / "LR_bicubic", "X{s}")
        if lr_dirs or hr_dir != root:
            return DatasetLayout("basicsr", hr_dir, _sources_with_lr(hr_dir, lr_dirs))
    hr_dir = _div2k_hr_dir(root, split)
    if hr_dir is not None:
        prefix = hr_dir.name[: -len("_HR")]
        lr_dirs = _scale_dirs(hr_dir.parent / f"{prefix}_LR_bicubic", "X{s}")
        return DatasetLayout("div2k", hr_dir, _sources_with_lr(hr_dir, lr_dirs))
    return DatasetLayout("folder", root, [ImageSource(p.stem, p) for p in list_images(root)])


def paired_sources(hr_dir: str | Path, lr_dir: str | Path, scale: int) -> list[ImageSource]:
    """HR and LR files of two folders paired by stem (``gvcore eval --hr DIR --lr DIR``).

    An LR file belongs to the HR file of the same stem, or of its stem without an ``x{scale}`` suffix
    (``baby.png`` or ``babyx2.png`` for ``baby.png``).

    Raises:
        ValueError: a folder is missing or holds no images, an HR image has no LR file, or an LR file has no HR
            image (each naming the file).
    """
    hr_root, lr_root = Path(hr_dir), Path(lr_dir)
    for role, path in (("HR", hr_root), ("LR", lr_root)):
        if not path.is_dir():
            raise ValueError(f"{role} folder {path} does not exist")
    hr_files = list_images(hr_root)
    if not hr_files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in HR folder {hr_root}")
    lr_files = _by_stem(lr_root, scale)
    sources = []
    for path in hr_files:
        lr = lr_files.pop(path.stem, None)
        if lr is None:
            raise ValueError(
                f"HR image {path} has no LR file in {lr_root} (expected {path.stem}.* or {path.stem}x{scale}.*)"
            )
        sources.append(ImageSource(path.stem, path, {scale: lr}, lr_explicit=True))
    if lr_files:
        extra = sorted(p.name for p in lr_files.values())
        raise ValueError(f"LR file(s) without an HR image in {hr_root}: {', '.join(extra[:5])}")
    return sources


def check_lr_size(hr_shape: Sequence[int], lr_shape: Sequence[int], scale: int, hr: Path, lr: Path) -> None:
    """Raise unless HR, cropped to a multiple of ``scale`` (BasicSR's ``mod_crop``), is ``scale`` x LR.

    Raises:
        ValueError: naming both files and all three sizes.
    """
    h, w = hr_shape[0] - hr_shape[0] % scale, hr_shape[1] - hr_shape[1] % scale
    if (h, w) != (lr_shape[0] * scale, lr_shape[1] * scale):
        raise ValueError(
            f"LR image {lr} is {lr_shape[0]}x{lr_shape[1]}; expected {h // scale}x{w // scale} = HR image {hr} "
            f"({hr_shape[0]}x{hr_shape[1]}, cropped to a multiple of {scale}: {h}x{w}) / {scale}"
        )


def find_named_datasets(root: str | Path, max_depth: int = 3) -> dict[str, Path]:
    """The standard benchmark sets (:data:`BENCHMARK_NAMES`) present under ``root``, name -> folder.

    A set is a folder whose name matches (case-insensitive) and that holds images in a detectable layout;
    the first found (breadth first, sorted) wins. DIV2K-val is found as ``DIV2K_valid_HR`` (its LR sibling
    ``DIV2K_valid_LR_bicubic`` is then used).
    """
    base = Path(root)
    wanted = {alias: name for name, aliases in BENCHMARK_NAMES.items() for alias in aliases}
    found: dict[str, Path] = {}
    level = [base] if base.is_dir() else []
    for _ in range(max_depth):
        following = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for child in children:
                name = wanted.get(child.name.lower())
                if name is not None and name not in found and _has_images(child):
                    found[name] = child
                following.append(child)
        level = following
    return {name: found[name] for name in BENCHMARK_NAMES if name in found}


def _has_images(folder: Path) -> bool:
    try:
        return bool(detect_layout(folder).sources)
    except (ValueError, OSError):
        return False
