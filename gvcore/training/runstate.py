"""Run-directory plumbing of :mod:`gvcore.training.run`: atomic writes, the CSV log, RNG state for resuming.

Everything here is written so a process killed at any instant (SIGKILL included) leaves either the previous
or the new version of a file, never a torn one (:func:`gvcore.atomic.atomic_write`).
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from gvcore.atomic import atomic_write

__all__ = [
    "CsvLog",
    "atomic_write_bytes",
    "atomic_write_text",
    "prepare_run_dir",
    "rng_state",
    "set_rng_state",
    "truncate_log",
]


def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Replace ``path`` with what ``write(handle)`` writes, atomically (:func:`gvcore.atomic.atomic_write`)."""
    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically (:func:`gvcore.atomic.atomic_write`)."""
    atomic_write(path, text.encode())


def run_lock(out: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``out/.lock`` for the life of a run; a second run into the same ``--out`` is refused.

    Returns the open lock file (closing it releases the lock; so does the process ending, even by SIGKILL).
    """
    import fcntl

    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / ".lock", "a+b")  # noqa: SIM115 - held until the run ends
    except OSError as err:
        raise ValueError(f"--out {out} is not writable: {err.strerror or err}") from err
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        raise ValueError(
            f"--out {out} is in use by another training process; wait for it or choose another --out"
        ) from err
    return handle


def prepare_run_dir(out: Path, resume: bool) -> bool:
    """Create ``out`` (checking it is writable); return whether it was created here."""
    has_run = (out / "config.json").exists() or (out / "resume.pt").exists()
    if has_run and not resume:
        raise ValueError(
            f"--out {out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if resume and (out / "last.safetensors").exists() and not (out / "resume.pt").exists():
        raise ValueError(
            f"--resume: {out} holds weights (last.safetensors) but no resume.pt, so there is nothing to resume "
            "from; starting over would overwrite them (move them away or choose another --out)"
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--out {out} is not writable: {err.strerror or err}") from err
    return created


def truncate_log(path: Path, step: int) -> None:
    """Keep the header and the rows with ``step <= step`` (a resumed run re-logs the steps after it)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    kept = [rows[0]] if rows else []
    kept += [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    lines = [",".join(r) for r in kept]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


class CsvLog:
    """``log.csv`` in append mode, one flushed row per call."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        """Open ``path`` for appending; a new or empty file gets the header row first."""
        self.columns = tuple(columns)
        new = not path.exists() or path.stat().st_size == 0
        self.fh = open(path, "a", newline="")  # noqa: SIM115 - closed by close()
        self.writer = csv.writer(self.fh, lineterminator="\n")
        if new:
            self.writer.writerow(self.columns)
            self.fh.flush()

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (missing columns are empty) and flush it to disk."""
        self.writer.writerow([_fmt(row.get(c)) for c in self.columns])
        self.fh.flush()

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".8g")
    return str(value)


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), NumPy and Python RNG states as a checkpointable dict of tensors and numbers."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state` (CUDA only where a device is available)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
