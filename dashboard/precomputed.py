"""Results computed once and kept on disk: what every visitor would otherwise recompute on every visit.

An entry is one ``.npz`` file (``numpy.savez_compressed``, read back with ``allow_pickle=False``: nothing in it can
run code) holding named arrays plus one JSON document (``__json__``, a unicode array) for numbers, names and small
tables (CSV text). Its name is ``<kind>-<key>.npz``, where ``key`` is the SHA-256 of the inputs that define it
(:func:`entry_key`): the *contents* of the images and checkpoints (:func:`content_digest`, not their paths or
modification times), the settings and :data:`FORMAT`. An entry never goes stale: changed inputs have another key.

Two stores are searched, in order (:func:`store_dirs`):

- ``<assets>/precomputed``: shipped with the repository (``gvcore precompute --shipped`` writes it), read only;
- the user cache: ``$GVLAB_CACHE``, else ``$XDG_CACHE_HOME/gvlab``, else ``~/.cache/gvlab``; entries the pages
  compute are written there, so they are computed once per machine, not once per visit.

Nothing here imports Streamlit; :mod:`dashboard.observation_view` and the pages decide what an entry holds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dashboard import state

__all__ = [
    "FORMAT",
    "Entry",
    "cache_dir",
    "content_digest",
    "entry_key",
    "load",
    "save",
    "shipped_dir",
    "store_dirs",
]

#: version of what entries hold; bumping it makes every stored entry unused (another key)
FORMAT = "gvlab-precomputed/3"  # 2: landing views hold the noise control row; 3: atlas regions never touch

Entry = tuple[dict[str, np.ndarray], dict[str, Any]]

_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}
_LOCK = threading.Lock()


def shipped_dir() -> Path:
    """The shipped store, ``<assets>/precomputed``."""
    return state.assets_root() / "precomputed"


def cache_dir() -> Path:
    """The user's store: ``$GVLAB_CACHE``, else ``$XDG_CACHE_HOME/gvlab``, else ``~/.cache/gvlab``."""
    raw = os.environ.get("GVLAB_CACHE", "").strip()
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gvlab"


def store_dirs() -> list[Path]:
    """Where entries are looked for, in order: the shipped store, then the user cache."""
    return [shipped_dir(), cache_dir()]


def content_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), remembered per (path, inode, size, mtime, ctime) within one process.

    The memo is only trusted while none of those changed: ``cp -p``, ``rsync -a`` or ``tar`` can give a replaced
    file the old size and mtime, but a write or rename always sets a new ctime (which no user call can set back)
    or a new inode, so a replaced file is hashed again (results-database rule, docs/ARCHITECTURE.md).
    """
    file = Path(path)
    stat = file.stat()
    marker = (str(file.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _LOCK:
        known = _DIGESTS.get(marker)
    if known is None:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        known = digest.hexdigest()
        with _LOCK:
            _DIGESTS[marker] = known
    return known


def entry_key(kind: str, inputs: Mapping[str, Any]) -> str:
    """The key of an entry: SHA-256 of ``kind``, :data:`FORMAT`, the scoring's definition and ``inputs``.

    The scoring's definition (gvcore's version and :data:`gvcore.eval.scoring.SCORE_COLUMNS`) is part of every key, so
    an entry scored before a metric was added or changed is never shown as current.
    """
    import gvcore
    from gvcore.eval.scoring import SCORE_COLUMNS

    scoring = {"gvcore": gvcore.__version__, "columns": list(SCORE_COLUMNS)}
    text = json.dumps(
        {"kind": kind, "format": FORMAT, "scoring": scoring, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _name(kind: str, key: str) -> str:
    return f"{kind}-{key}.npz"


def load(kind: str, key: str) -> Entry | None:
    """The entry ``kind``/``key`` from the first store that has it, or ``None``.

    A file that is not a readable entry (truncated, foreign, holding objects) counts as missing.
    """
    for folder in store_dirs():
        path = folder / _name(kind, key)
        if not path.is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name != "__json__"}
                meta = json.loads(str(data["__json__"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            continue
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            return arrays, meta
    return None


def save(
    kind: str, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], folder: Path | None = None
) -> Path | None:
    """Write an entry to ``folder`` (default the user cache) atomically; ``None`` when it cannot be written.

    An unwritable cache is not an error: the page then computes again on the next visit.
    """
    from gvcore.atomic import atomic_write

    target = folder if folder is not None else cache_dir()
    document = json.dumps({**meta, "format": FORMAT}, default=_json_default)
    payload = {
        **{name: np.ascontiguousarray(value) for name, value in arrays.items()},
        "__json__": np.array(document),
    }
    if any(value.dtype.hasobject for value in payload.values()):
        raise TypeError("precomputed entries hold plain arrays only (no Python objects)")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **payload)  # type: ignore[arg-type]
    try:
        target.mkdir(parents=True, exist_ok=True)
        return atomic_write(target / _name(kind, key), buffer.getvalue())
    except OSError:
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.name
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def frame_to_text(frame: Any) -> str:
    """A pandas table as CSV text (for an entry's JSON document)."""
    return str(frame.to_csv(index=False))


def frame_from_text(text: str) -> Any:
    """The pandas table :func:`frame_to_text` wrote."""
    import pandas as pd

    return pd.read_csv(io.StringIO(text))
