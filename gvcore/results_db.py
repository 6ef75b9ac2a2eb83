"""The results database: per-image evaluation results in SQLite, keyed by content (``gvcore eval --cache``).

A row is one (method, image) result of :func:`gvcore.evaluation.evaluate`. Its key is a SHA-256 over

- the checkpoint file's SHA-256 (empty for the ``HR`` and baseline rows, which need no model),
- the HR file's and the given LR file's SHA-256 (``synth`` when LR is synthesised),
- protocol, scale, settings (tile, overlap, device) and the gvcore version,

so a renamed file still hits, and a changed file, setting or version misses. A repeated evaluation reads its
rows back and returns the identical table without running a model.

Default location (:func:`default_path`): ``$GVLAB_RESULTS_DB`` when set, else ``runs/results.sqlite``
(:data:`DEFAULT_PATH`) under the working directory for the CLI and under the repository for the dashboard; set
``GVLAB_RESULTS_DB`` so that both use one file wherever they are started.

Safety: WAL journal, a 30 s busy timeout and one transaction per image, so concurrent evaluations never
corrupt the file (each writes whole rows; identical keys hold identical values). The file carries an
``application_id`` and a schema version: a foreign SQLite file is refused with a clear error (never
touched); a file that is not a database or is damaged is set aside (renamed ``NAME.corrupt-<time>``) and a
fresh one started, with a warning. Values are JSON text (never pickled).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_PATH",
    "ResultsDB",
    "ResultsDBError",
    "default_path",
    "file_hash",
    "read_results",
    "result_key",
]

#: where ``gvcore eval --cache`` (without a file name) keeps results.
DEFAULT_PATH = Path("runs") / "results.sqlite"
#: SQLite ``application_id`` of a gvcore results database ("GVLB").
APPLICATION_ID = 0x47564C42
SCHEMA_VERSION = 1
#: environment variable naming the results database for the CLI and the dashboard alike
ENV_VAR = "GVLAB_RESULTS_DB"


def default_path(base: str | Path | None = None) -> Path:
    """The results database used when none is named: ``$GVLAB_RESULTS_DB``, else ``base/runs/results.sqlite``.

    Args:
        base: folder the default is relative to (``None``: the working directory).

    Returns:
        The database path (not necessarily existing yet).
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        return Path(raw).expanduser()
    return Path(base) / DEFAULT_PATH if base is not None else DEFAULT_PATH


_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    checkpoint_hash TEXT NOT NULL,
    hr_hash TEXT NOT NULL,
    lr_hash TEXT NOT NULL,
    protocol TEXT NOT NULL,
    scale INTEGER NOT NULL,
    settings TEXT NOT NULL,
    gvcore_version TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    data TEXT NOT NULL,
    image TEXT NOT NULL,
    row TEXT NOT NULL,
    created REAL NOT NULL
)
"""

#: columns every listed row has (rows stored by older code may lack some).
_TABLE_COLUMNS = ("method", "arch", "loss", "gv_weight", "seed", "scale", "protocol", "image", "iteration")

_HASHES: dict[tuple[str, int, int], str] = {}


class ResultsDBError(ValueError):
    """The results database cannot be used (a foreign SQLite file, an unwritable location)."""


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (memoised per path, size and modification time in this process)."""
    source = Path(path)
    stat = source.stat()
    memo = (str(source.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _HASHES:
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[memo] = digest.hexdigest()
    return _HASHES[memo]


def result_key(parts: Mapping[str, Any]) -> str:
    """The content key of one result: SHA-256 of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(dict(parts), sort_keys=True).encode()).hexdigest()


def read_results(path: str | Path) -> Any:
    """Every stored result of a results database, read-only (:meth:`ResultsDB.table`; nothing is renamed).

    Raises:
        ResultsDBError: the file is missing, not a database, damaged, or not a gvcore results database.
    """
    source = Path(path)
    if not source.is_file():
        raise ResultsDBError(f"no results database at {source}")
    try:
        conn = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as err:
        raise ResultsDBError(f"cannot open results database {source.name}: {err}") from err
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise ResultsDBError(f"{source.name} is not a gvcore results database")
        reader = ResultsDB.__new__(ResultsDB)
        reader.path, reader._conn = source, conn
        return reader.table()
    except sqlite3.Error as err:
        raise ResultsDBError(f"results database {source.name} is damaged or not a database: {err}") from err
    finally:
        conn.close()


class ResultsDB:
    """An open results database (module docstring). Use as a context manager, or call :meth:`close`.

    Args:
        path: the SQLite file; created (with its folder) when missing.

    Raises:
        ResultsDBError: ``path`` is a folder, a foreign SQLite database, or cannot be created.
    """

    def __init__(self, path: str | Path) -> None:
        """Open (or create) the database at ``path``; see the class docstring."""
        self.path = Path(path)
        if self.path.is_dir():
            raise ResultsDBError(
                f"results database {self.path} is a folder; give a file such as results.sqlite"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ResultsDBError(f"cannot create the folder of results database {self.path}: {err}") from err
        try:
            self._conn = self._open()
        except sqlite3.OperationalError as err:  # locked for over 30 s, permissions, ...: never set aside
            raise ResultsDBError(f"cannot open results database {self.path}: {err}") from err
        except sqlite3.DatabaseError as err:  # not a database, or damaged
            self._set_aside(err)
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed (quick_check failed)")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_or_init(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_or_init(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if app_id == 0 and not tables:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(_SCHEMA)
            return
        if app_id != APPLICATION_ID:
            shown = ", ".join(tables[:5]) or "none"
            raise ResultsDBError(
                f"{self.path} is an SQLite database but not a gvcore results database (tables: {shown}); "
                "give --cache another file"
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise ResultsDBError(
                f"results database {self.path} has schema version {version}; this gvcore reads version "
                f"{SCHEMA_VERSION}: give --cache another file"
            )

    def _set_aside(self, err: Exception) -> None:
        aside = self.path.with_name(
            f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        )
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{aside}{suffix}"))
        warnings.warn(
            f"results database {self.path} is damaged or not a database ({err}); set it aside as {aside.name} "
            "and started a new one",
            RuntimeWarning,
            stacklevel=3,
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of ``keys`` that exist, key -> row dict."""
        wanted = list(keys)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, row in self._conn.execute(f"SELECT key, row FROM results WHERE key IN ({marks})", chunk):
                found[key] = json.loads(row)
        return found

    def put_many(self, records: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> None:
        """Store ``(key, fields, row)`` records in one transaction (``fields``: the key's parts and context)."""
        now = time.time()
        values = [
            (
                key,
                str(fields.get("checkpoint_hash", "")),
                str(fields.get("hr_hash", "")),
                str(fields.get("lr_hash", "")),
                str(fields.get("protocol", "")),
                int(fields.get("scale", 0)),
                json.dumps(fields.get("settings", {}), sort_keys=True),
                str(fields.get("gvcore_version", "")),
                str(fields.get("checkpoint", "")),
                str(fields.get("data", "")),
                str(fields.get("image", "")),
                json.dumps(dict(row)),
                now,
            )
            for key, fields, row in records
        ]
        if not values:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def table(self) -> Any:
        """Every stored result as a ``pandas.DataFrame``, newest first.

        Columns: the evaluation row's plus ``data``, ``checkpoint``, ``gvcore_version``, ``created`` (UTC time)
        and ``settings``.
        """
        import pandas as pd

        cursor = self._conn.execute(
            "SELECT row, data, checkpoint, gvcore_version, settings, created FROM results ORDER BY created DESC"
        )
        records = []
        for row, data, checkpoint, version, settings, created in cursor:
            record = dict.fromkeys(_TABLE_COLUMNS) | json.loads(row)
            record.update(data=data, checkpoint=checkpoint, gvcore_version=version, settings=settings)
            record["created"] = pd.Timestamp(created, unit="s", tz="UTC")
            records.append(record)
        return pd.DataFrame.from_records(records)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> ResultsDB:
        """Return the open database."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the database."""
        self.close()
