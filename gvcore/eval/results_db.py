"""The results database: per-image evaluation results in SQLite, keyed by content (``gvcore eval --cache``).

A row is one (method, image) result of :func:`gvcore.eval.evaluate.evaluate`. Its key is a SHA-256 over

- the SHA-256 of the checkpoint bytes the model was built from (empty for the ``HR`` and baseline rows),
- the SHA-256 of the HR and given LR bytes that were decoded (``synth`` when LR is synthesised),
- protocol, scale, settings (tile, overlap, device) and the gvcore version,

so a renamed file still hits, and a changed file, setting or version misses. Keys are hashes of the bytes
that were actually used (read once, hashed, decoded from the same buffer), never of file metadata: a file
replaced before, during or after loading can never pair one model's numbers with another file's key. Nothing
is memoised by path, size or modification time.

Default location (:func:`default_path`): ``$GVLAB_RESULTS_DB`` when set, else ``runs/results.sqlite``
(:data:`DEFAULT_PATH`) under the working directory for the CLI and under the repository for the dashboard; set
``GVLAB_RESULTS_DB`` so that both use one file wherever they are started.

Only our own database, exactly our schema (:func:`gvcore.eval.results_schema.verify_schema`): the file must carry
our ``application_id`` and schema version and hold exactly the ``results`` table (no trigger, no view, no
other object); the schema is verified before first use and again whenever SQLite's ``schema_version`` moves.
Anything else is refused with :class:`ResultsDBError` and left untouched. A new database is built under a
temporary name and linked into place, so a file at the path is either absent or a complete database we
created. A symlink (the database or its ``-wal``/``-shm``/``-journal`` side files) is refused, so a link's
target is never written. Only a file whose header says it is ours but which SQLite finds damaged is set aside
(renamed ``NAME.corrupt-<time>-<pid>``) and a fresh one started, with a warning.

Concurrency: WAL journal, a 30 s busy timeout and one transaction per image, so concurrent evaluations never
corrupt the file (each writes whole rows; identical keys hold identical values). Values are JSON text (never
pickled); rows are validated when read (:mod:`gvcore.eval.results_rows`): an unusable row is skipped with a
warning naming its key, never trusted and never a crash. Listing is bounded (:func:`read_results`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gvcore.eval.results_rows import DEFAULT_MAX_ROW_BYTES, overview, parse_row, read_table, strict_json
from gvcore.eval.results_schema import (
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_VERSION,
    ResultsDBError,
    check_file,
    verify_schema,
)

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_PATH",
    "ResultsDB",
    "ResultsDBError",
    "bytes_hash",
    "default_path",
    "file_hash",
    "read_results",
    "result_key",
    "results_overview",
]

#: where ``gvcore eval --cache`` (without a file name) keeps results.
DEFAULT_PATH = Path("runs") / "results.sqlite"
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


def bytes_hash(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 (hex) of ``data``: the key part of bytes that were read once and then used."""
    return hashlib.sha256(data).hexdigest()


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read now (never memoised: a file replaced in place always hashes anew).

    For a key, prefer :func:`bytes_hash` of the very bytes that were decoded, so the key and the content
    cannot come from two versions of the file.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_key(parts: Mapping[str, Any]) -> str:
    """The content key of one result: SHA-256 of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(dict(parts), sort_keys=True).encode()).hexdigest()


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, timeout=30.0, isolation_level=None, uri=uri)
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")  # bad UTF-8 is a bad row, not a crash
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


@contextlib.contextmanager
def _read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A verified read-only connection in one read transaction; every SQLite failure as ResultsDBError."""
    source = Path(path)
    if not source.is_file():
        raise ResultsDBError(f"no results database at {source}")
    check_file(source, allow_symlink=True)  # reading through a link writes nothing
    try:
        conn = _connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise ResultsDBError(f"cannot open results database {source.name}: {err}") from err
    try:
        conn.execute("BEGIN")
        verify_schema(conn, source)
        yield conn
    except sqlite3.Error as err:
        raise ResultsDBError(f"results database {source.name} is damaged or not a database: {err}") from err
    finally:
        conn.close()


def read_results(
    path: str | Path,
    *,
    limit: int = 10_000,
    offset: int = 0,
    filters: Mapping[str, Sequence[Any]] | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    max_bytes: int = 64 * 1024**2,
) -> Any:
    """One page of the stored results of a results database, newest first, read-only (nothing is renamed).

    Memory is bounded by ``limit`` rows and ``max_bytes`` of row text, whatever the file holds; rows over
    ``max_row_bytes`` are never fetched, and rows that are not valid results are skipped
    (:func:`gvcore.eval.results_rows.read_table`).

    Args:
        path: the database file.
        limit: most rows returned.
        offset: rows skipped first (page ``k`` of size ``limit`` starts at ``k * limit``).
        filters: column -> accepted values, for ``data``, ``protocol``, ``scale`` and ``method``.
        max_row_bytes: a stored row larger than this is skipped (an evaluation row is under 2 KiB).
        max_bytes: reading stops once this much row text was read (``attrs["truncated"]``).

    Returns:
        ``pandas.DataFrame``: the evaluation row's columns plus ``data``, ``checkpoint``, ``gvcore_version``,
        ``created`` (UTC) and ``settings``. ``attrs``: ``total`` (rows matching ``filters``), ``skipped`` (one
        line per row left out, naming its key), ``truncated`` (``max_bytes`` was reached).

    Raises:
        ResultsDBError: the file is missing, not a database, damaged, or not exactly a gvcore results database.
    """
    bounds = {"limit": limit, "offset": offset, "max_row_bytes": max_row_bytes, "max_bytes": max_bytes}
    with _read_only(path) as conn:
        return read_table(conn, Path(path).name, filters=filters, **bounds)


def results_overview(path: str | Path) -> dict[str, Any]:
    """The row count and the distinct data sets, protocols, scales and methods of a database, read-only.

    Bounded (:func:`gvcore.eval.results_rows.overview`): what a listing's filters offer, without reading the rows.

    Raises:
        ResultsDBError: as :func:`read_results`.
    """
    with _read_only(path) as conn:
        return overview(conn)


class ResultsDB:
    """An open results database (module docstring). Use as a context manager, or call :meth:`close`.

    Args:
        path: the SQLite file; created (with its folder) when missing.

    Raises:
        ResultsDBError: ``path`` is a folder, a symlink, not a database gvcore created, a database of another
            schema (extra tables, triggers, views, other columns), or cannot be created.
    """

    def __init__(self, path: str | Path) -> None:
        """Open (or create) the database at ``path``; see the class docstring."""
        self.path = Path(path)
        if self.path.is_dir() and not self.path.is_symlink():
            raise ResultsDBError(
                f"results database {self.path} is a folder; give a file such as results.sqlite"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ResultsDBError(f"cannot create the folder of results database {self.path}: {err}") from err
        self._schema_version = -1
        self._conn = self._open_or_create()

    # ------------------------------------------------------------------------------------------- opening
    def _open_or_create(self) -> sqlite3.Connection:
        for _ in range(3):  # another process may create the file between our look and our link
            identity = check_file(self.path)  # None: no file; refuses anything not ours, untouched
            if identity is None:
                self._create()  # linked into place (or another process won): open what is there now
                continue
            try:
                return self._open_existing(identity)
            except sqlite3.OperationalError as err:  # locked for over 30 s, permissions, ...: never set aside
                raise ResultsDBError(f"cannot open results database {self.path}: {err}") from err
            except sqlite3.DatabaseError as err:  # our header, but SQLite finds the file damaged
                self._set_aside(err)
        raise ResultsDBError(f"results database {self.path} keeps changing while it is opened; try again")

    def _open_existing(self, identity: tuple[int, int]) -> sqlite3.Connection:
        conn = _connect(str(self.path))
        try:
            if check_file(self.path) != identity:  # swapped (e.g. for a symlink) since it was checked
                raise ResultsDBError(f"results database {self.path} was replaced while it was opened")
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed (quick_check failed)")
            conn.execute("BEGIN")
            try:
                self._schema_version = verify_schema(conn, self.path)
            finally:
                conn.execute("COMMIT")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _create(self) -> None:
        """Build a new database under a temporary name and link it into place (never over a file that appeared)."""
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            conn = sqlite3.connect(temp, isolation_level=None)
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute(SCHEMA)
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            try:
                os.link(temp, self.path)  # never replaces a file that appeared meanwhile
            except FileExistsError:
                return
            except OSError:  # a file system without hard links: rename, after looking once more
                if not os.path.lexists(self.path):
                    os.replace(temp, self.path)
        except (OSError, sqlite3.Error) as err:
            raise ResultsDBError(f"cannot create results database {self.path}: {err}") from err
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{temp}{suffix}")

    def _set_aside(self, err: Exception) -> None:
        aside = self.path.with_name(
            f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        )
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists() and stat.S_ISREG(part.lstat().st_mode):
                os.replace(part, Path(f"{aside}{suffix}"))
        warnings.warn(
            f"results database {self.path} is damaged ({err}); set it aside as {aside.name} and started a "
            "new one",
            RuntimeWarning,
            stacklevel=4,
        )

    def _verified(self) -> None:
        """Inside a transaction: re-verify the schema if anything changed it since it was last verified."""
        if self._conn.execute("PRAGMA schema_version").fetchone()[0] != self._schema_version:
            self._schema_version = verify_schema(self._conn, self.path)

    # ------------------------------------------------------------------------------------------- reading
    def get_many(
        self, keys: Iterable[str], *, numbers: Sequence[str] = (), texts: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """The stored, valid rows of ``keys`` that exist, key -> row dict.

        A row that is not a JSON object of bounded size, or whose ``numbers`` keys are not numbers (finite,
        NaN, or +inf for ``psnr``) or ``texts`` keys not strings, is left out with a ``RuntimeWarning`` naming
        its key, so the caller recomputes it.
        """
        wanted = list(keys)
        found: dict[str, dict[str, Any]] = {}
        unusable: list[str] = []
        try:
            self._conn.execute("BEGIN")
            try:
                self._verified()
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    query = (
                        f"SELECT key, CASE WHEN length(CAST(row AS BLOB)) <= {DEFAULT_MAX_ROW_BYTES} "
                        f"THEN row END, length(CAST(row AS BLOB)) FROM results WHERE key IN ({marks})"
                    )
                    for key, text, size in self._conn.execute(query, chunk):
                        row, problem = parse_row(text, size, numbers=numbers, texts=texts)
                        if row is None:
                            unusable.append(f"{str(key)[:16]} ({problem})")
                        else:
                            found[key] = row
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise ResultsDBError(f"cannot read results database {self.path.name}: {err}") from err
        if unusable:
            more = f" and {len(unusable) - 3} more" if len(unusable) > 3 else ""
            warnings.warn(
                f"results database {self.path.name}: stored row {', '.join(unusable[:3])}{more} is unusable; "
                "recomputed",
                RuntimeWarning,
                stacklevel=2,
            )
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
                strict_json(row),
                now,
            )
            for key, fields, row in records
        ]
        if not values:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._verified()  # a trigger or view added since opening is refused before any write
                self._conn.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise ResultsDBError(f"cannot write results database {self.path.name}: {err}") from err

    def table(self, **bounds: Any) -> Any:
        """One page of the stored results as a ``pandas.DataFrame``, newest first (:func:`read_results`).

        Args:
            bounds: ``limit``, ``offset``, ``filters``, ``max_row_bytes``, ``max_bytes`` of :func:`read_results`.
        """
        try:
            self._conn.execute("BEGIN")
            try:
                self._verified()
                return read_table(self._conn, self.path.name, **bounds)
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise ResultsDBError(f"cannot read results database {self.path.name}: {err}") from err

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> ResultsDB:
        """Return the open database."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the database."""
        self.close()
