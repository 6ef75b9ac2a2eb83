"""Snapshot series: the checkpoints of a folder, in training order, with the iteration each was saved at.

``gvcore eval --ckpt DIR`` evaluates every checkpoint of ``DIR`` (``.safetensors``, ``.pth``, ``.pt``). The
iteration comes from the file name:

- ours (``gvcore train --keep-snapshots``): ``step_000500.safetensors`` -> 500;
- BasicSR: ``net_g_5000.pth`` -> 5000 (also ``net_g_ema_5000.pth``); ``net_g_latest.pth`` -> no iteration;
- anything else: no iteration (the file is still evaluated; it sorts after the numbered ones).

A run directory's ``resume.pt`` (training state, not a model) and hidden files are skipped.

Example:
    >>> snapshot_iteration("runs/a/snapshots/step_000500.safetensors"), snapshot_iteration("net_g_5000.pth")
    (500, 5000)
    >>> snapshot_iteration("net_g_latest.pth") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SNAPSHOT_SUFFIXES",
    "CheckpointEntry",
    "expand_checkpoints",
    "find_snapshot_folders",
    "series_name",
    "snapshot_iteration",
]

#: checkpoint suffixes a snapshot folder is searched for.
SNAPSHOT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt")

#: files of a run directory that are not model checkpoints (``gvcore train``'s training state).
_NOT_MODELS = frozenset({"resume.pt"})

_PATTERNS = (
    re.compile(r"^step_(\d+)$"),  # ours
    re.compile(r"^net_g(?:_ema)?_(\d+)$"),  # BasicSR
)


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint to evaluate: its file, the iteration parsed from its name, the series (folder) it is of."""

    path: Path
    iteration: int | None = None
    series: str | None = None


def snapshot_iteration(path: str | Path) -> int | None:
    """The training iteration in a snapshot's file name (module docstring), or ``None``."""
    stem = Path(path).stem
    for pattern in _PATTERNS:
        match = pattern.match(stem)
        if match:
            return int(match.group(1))
    return None


def series_name(folder: str | Path) -> str:
    """Display name of a snapshot folder: its name, or its run directory's for ``<run>/snapshots``."""
    path = Path(folder).resolve()
    return path.parent.name if path.name == "snapshots" and path.parent.name else path.name


def expand_checkpoints(paths: Sequence[str | Path]) -> list[CheckpointEntry]:
    """Files stay as they are; a folder becomes its checkpoints sorted by iteration (unnumbered last, by name).

    Raises:
        ValueError: a folder holds no checkpoint file.
    """
    entries: list[CheckpointEntry] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            entries.append(CheckpointEntry(path, None, None))
            continue
        files = [
            p
            for p in path.iterdir()
            if p.is_file()
            and p.suffix.lower() in SNAPSHOT_SUFFIXES
            and p.name not in _NOT_MODELS
            and not p.name.startswith(".")
        ]
        if not files:
            raise ValueError(f"checkpoint folder {path} holds no checkpoint ({', '.join(SNAPSHOT_SUFFIXES)})")
        numbered = sorted(((snapshot_iteration(p), p) for p in files), key=_order)
        name = series_name(path)
        entries.extend(CheckpointEntry(p, it, name) for it, p in numbered)
    return entries


def _order(item: tuple[int | None, Path]) -> tuple[int, int, str]:
    iteration, path = item
    return (1, 0, path.name) if iteration is None else (0, iteration, path.name)


def find_snapshot_folders(roots: Sequence[str | Path], max_depth: int = 3) -> dict[str, Path]:
    """Snapshot folders under ``roots``, display name -> folder.

    A snapshot folder (at most ``max_depth`` levels down) holds at least two checkpoints whose names carry an
    iteration (``<run>/snapshots/step_*.safetensors``, BasicSR's ``experiments/<name>/models/net_g_*.pth``). The
    name is the root-relative path, of the run directory for ``<run>/snapshots``.
    """
    found: dict[str, Path] = {}
    for raw in roots:
        root = Path(raw)
        if not root.is_dir():
            continue
        level = [root]
        for _ in range(max_depth + 1):
            following: list[Path] = []
            for folder in level:
                try:
                    children = sorted(folder.iterdir())
                except OSError:
                    continue
                numbered = [
                    p
                    for p in children
                    if p.suffix.lower() in SNAPSHOT_SUFFIXES and snapshot_iteration(p) is not None
                ]
                if len(numbered) >= 2:
                    shown = folder.parent if folder.name == "snapshots" else folder
                    name = shown.relative_to(root).as_posix() if shown != root else root.name
                    found.setdefault(name, folder)
                following.extend(p for p in children if p.is_dir() and not p.name.startswith("."))
            level = following
    return found
