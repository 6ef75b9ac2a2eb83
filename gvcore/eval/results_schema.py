"""What a gvcore results database is, checked before any use: the file (:func:`check_file`), then the schema.

:func:`check_file` looks at the path without opening it as a database: a regular file (never a symlink when
writing, nor symlinked ``-wal``/``-shm``/``-journal`` side files), not empty, starting with SQLite's magic and
carrying our ``application_id`` in its header. :func:`verify_schema` looks inside: our ``application_id`` and
``user_version``, and exactly one object besides SQLite's own primary-key index, the ``results`` table of
:data:`SCHEMA` with exactly its columns; any trigger, view, index or other table is refused. Everything
refused is left untouched and named in one line (:class:`ResultsDBError`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

__all__ = ["APPLICATION_ID", "SCHEMA", "SCHEMA_VERSION", "ResultsDBError", "check_file", "verify_schema"]

#: SQLite ``application_id`` of a gvcore results database ("GVLB").
APPLICATION_ID = 0x47564C42
SCHEMA_VERSION = 1
#: the one table of a results database (docs/ARCHITECTURE.md, "Results database").
SCHEMA = """
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
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the table's SQL as SQLite stores it (``IF NOT EXISTS`` dropped), whitespace collapsed.
_TABLE_SQL = " ".join(SCHEMA.replace("IF NOT EXISTS ", "").split())
_EXPECTED = {("table", "results", "results"), ("index", "sqlite_autoindex_results_1", "results")}


class ResultsDBError(ValueError):
    """The results database cannot be used (not ours, another schema, a symlink, an unwritable location)."""


def check_file(path: Path, *, allow_symlink: bool = False) -> tuple[int, int] | None:
    """Whether ``path`` may be opened as our database, from the file system and its 100-byte header only.

    Args:
        path: the database file.
        allow_symlink: follow a symlink (read-only use); when writing, a symlink is refused.

    Returns:
        ``None`` when nothing is there (a new database may be created), else the file's ``(device, inode)``.

    Raises:
        ResultsDBError: a symlink (when writing), not a regular file, symlinked side files, an empty file, a
            file that is not SQLite, or an SQLite file without our application id. Nothing is modified.
    """
    if not allow_symlink:
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(f"{path}{suffix}")
            try:
                mode = side.lstat().st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise ResultsDBError(
                    f"{side} is not a regular file (a symlink?); the results database {path.name} is refused"
                )
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode) and not allow_symlink:
        raise ResultsDBError(
            f"{path} is a symbolic link; a results database is only written as a regular file (give the file "
            "itself, or a new name)"
        )
    flags = os.O_RDONLY | (0 if allow_symlink else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise ResultsDBError(f"cannot read results database {path}: {err.strerror or err}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ResultsDBError(f"{path} is not a regular file; give a results database file")
        head = os.read(fd, 100)
    finally:
        os.close(fd)
    if not head:
        raise ResultsDBError(
            f"{path} is an empty file, not a gvcore results database; left untouched: delete it or use another "
            "file"
        )
    if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
        raise ResultsDBError(
            f"{path} is not an SQLite database (it starts with {head[:8]!r}); left untouched: give a gvcore "
            "results database or a new file name"
        )
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APPLICATION_ID:
        raise ResultsDBError(
            f"{path} is an SQLite database but not a gvcore results database (application id {app_id:#x}); "
            "left untouched: give another file"
        )
    return info.st_dev, info.st_ino


def verify_schema(conn: sqlite3.Connection, path: Path) -> int:
    """Refuse ``conn``'s database unless it is exactly a gvcore results database (module docstring).

    Returns:
        SQLite's ``schema_version`` at the check (re-verify when it changes).

    Raises:
        ResultsDBError: another application id or schema version, or any object but the ``results`` table
            (with its columns exactly) and its primary-key index.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise ResultsDBError(f"{path} is not a gvcore results database (application id {app_id:#x})")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise ResultsDBError(
            f"results database {path} has schema version {version}; this gvcore reads version "
            f"{SCHEMA_VERSION}: use another file"
        )
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    problems = [
        f"{kind} {name!r}"
        for kind, name, table, _ in objects
        if (str(kind), str(name), str(table)) not in _EXPECTED
    ]
    tables = [sql for kind, name, _, sql in objects if (kind, name) == ("table", "results")]
    if not tables:
        problems.append("no 'results' table")
    elif " ".join(str(tables[0]).split()) != _TABLE_SQL:
        problems.append("a 'results' table with other columns or constraints")
    if problems:
        shown = ", ".join(problems[:4]) + (f" and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise ResultsDBError(
            f"{path} has the gvcore application id but not exactly the results schema ({shown}); refused and "
            "left untouched"
        )
    return int(conn.execute("PRAGMA schema_version").fetchone()[0])
