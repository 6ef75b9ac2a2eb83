"""Scored snapshot series kept on disk: each snapshot folder is scored once per image set and protocol.

A series is :func:`gvcore.eval.evaluate.evaluate` of every checkpoint of a snapshot folder (the numbers of
``gvcore eval --ckpt DIR``), stored as an entry of :mod:`dashboard.precomputed` keyed by the checkpoints' contents,
the images (:func:`dashboard.atlas_store.data_signature`) and the protocol. ``gvcore precompute --shipped`` stores
the series of the shipped runs (``<assets>/runs``) on the bundled test split, so the Training snapshots page
shows curves on a fresh install without scoring anything. No Streamlit here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dashboard import precomputed
from dashboard.atlas_store import data_signature

__all__ = ["KIND", "compute_series", "load_series", "save_series", "series_key"]

KIND = "snapshots"


def _checkpoints(folder: Path) -> list[Path]:
    from gvcore.data.snapshots import SNAPSHOT_SUFFIXES

    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SNAPSHOT_SUFFIXES and p.is_file())


def series_key(folder: str | Path, data: str, protocol: str) -> str:
    """The store key of a folder's series: its checkpoints' names and contents, the images and the protocol."""
    files = [[p.name, precomputed.content_digest(p)] for p in _checkpoints(Path(folder))]
    return precomputed.entry_key(
        KIND, {"checkpoints": files, "data": data_signature(data), "protocol": protocol}
    )


def load_series(key: str) -> tuple[Any, list[str]] | None:
    """``(per-image table, skipped-file messages)`` stored under ``key``, or ``None``."""
    entry = precomputed.load(KIND, key)
    if entry is None:
        return None
    _, meta = entry
    table = precomputed.frame_from_text(meta["table"])
    table["method"] = table["method"].astype(str)
    return table, [str(e) for e in meta.get("errors", [])]


def save_series(key: str, table: Any, errors: list[str], folder: Path | None = None) -> Path | None:
    """Store a series (default: the user cache); ``None`` when it cannot be written."""
    return precomputed.save(
        KIND, key, {}, {"table": precomputed.frame_to_text(table), "errors": errors}, folder
    )


def compute_series(
    folder: str | Path, data: str, protocol: str, device: str = "cpu"
) -> tuple[Any, list[str]]:
    """Score every checkpoint of ``folder`` on ``data`` (:func:`gvcore.eval.evaluate.evaluate`): table and errors."""
    from gvcore.eval.evaluate import evaluate

    errors: list[str] = []
    frame = evaluate([str(folder)], data, None, protocol, progress=False, device=device, errors=errors)  # type: ignore[arg-type]
    return frame, errors
