"""Stored results, validated as they are read and read in bounded pages (:mod:`gvcore.eval.results_db`).

A stored row is trusted only after :func:`parse_row`: a JSON object of bounded size whose values are scalars,
text under the text columns (:data:`TEXT_KEYS`) and numbers (finite or NaN; ``psnr`` may be ``+inf``, the
PSNR of identical images) or empty under every other column. New metric columns need no change here: any
column that is not text must hold numbers. A row that fails is skipped with a message naming its key, never
a crash.

:func:`read_table` lists one page of rows (``limit``/``offset``, newest first) and stops at a byte budget;
oversized rows are never fetched from SQLite, so memory is bounded whatever the file holds.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_MAX_ROW_BYTES", "FILTER_COLUMNS", "TEXT_KEYS", "overview", "parse_row", "read_table"]

#: a stored row larger than this is skipped (an evaluation row is well under 2 KiB).
DEFAULT_MAX_ROW_BYTES = 64 * 1024
#: row keys that hold text; every other key holds a number or nothing.
TEXT_KEYS: frozenset[str] = frozenset({"method", "arch", "loss", "protocol", "image", "lr_source"})
#: columns every listed row has (rows stored by older code may lack some).
TABLE_COLUMNS = ("method", "arch", "loss", "gv_weight", "seed", "scale", "protocol", "image", "iteration")
#: what :func:`read_table` can filter on: the table's columns, and ``method`` inside the row.
FILTER_COLUMNS = ("data", "protocol", "scale", "method")
#: longest text kept from the listing's other columns (data, checkpoint, settings, version).
_MAX_FIELD_CHARS = 1024
_METHOD = "CASE WHEN json_valid(row) THEN json_extract(row, '$.method') END"


_POSITIVE_INFINITY = "__gvcore_positive_infinity__"


def strict_json(row: Mapping[str, Any]) -> str:
    """A row as strict JSON (RFC 8259, which SQLite's JSON functions read): NaN as ``null``, +inf as ``1e999``.

    Python's ``json`` writes ``NaN``/``Infinity``, which SQLite 3.40's ``json_valid``/``json_extract`` refuse,
    so a row holding one (a metric left empty, ``psnr`` of identical images) would drop out of the listing's
    filters. :func:`parse_row` reads ``null`` back as NaN and ``1e999`` as +inf.

    Example:
        >>> strict_json({"method": "HR", "psnr": float("nan"), "best": float("inf")})
        '{"method": "HR", "psnr": null, "best": 1e999}'
    """
    portable = {
        key: None
        if isinstance(value, float) and math.isnan(value)
        else (_POSITIVE_INFINITY if isinstance(value, float) and value == math.inf else value)
        for key, value in row.items()
    }
    return json.dumps(portable, allow_nan=False).replace(f'"{_POSITIVE_INFINITY}"', "1e999")


def _number_problem(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} is {type(value).__name__}, not a number"
    if isinstance(value, float) and math.isinf(value) and not (key == "psnr" and value > 0):
        return f"{key} is {value}"
    return None


def _json_object(text: Any, size: Any) -> tuple[dict[Any, Any] | None, str]:
    """The stored ``row`` value decoded as a JSON object, or ``(None, why)``."""
    if text is None:
        return None, f"{size} bytes, over the row size limit" if size else "empty"
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None, "not UTF-8 text"
    if not isinstance(text, str):
        return None, f"a {type(text).__name__}, not JSON text"
    try:
        row = json.loads(text)
    except (ValueError, RecursionError) as err:
        return None, f"not valid JSON: {str(err)[:80]}"
    if not isinstance(row, dict):
        return None, f"JSON {type(row).__name__}, not an object"
    return row, ""


def _value_problem(key: Any, value: Any, texts: Sequence[str]) -> str | None:
    """What is wrong with one stored value (a container, text where a number belongs, ...), or ``None``."""
    if isinstance(value, (dict, list)):
        return f"{str(key)[:40]} is a {type(value).__name__}"
    if key in TEXT_KEYS or key in texts:
        if value is not None and not isinstance(value, str):
            return f"{str(key)[:40]} is {type(value).__name__}, not text"
        if key in texts and value is None:
            return f"{str(key)[:40]} is empty"
        return None
    return _number_problem(str(key)[:40], value)


def parse_row(
    text: Any, size: Any = None, *, numbers: Sequence[str] = (), texts: Sequence[str] = ()
) -> tuple[dict[str, Any] | None, str]:
    """A stored row as a dict, or ``(None, why)`` when it is not a valid result.

    Args:
        text: the stored ``row`` value (``None`` when it was too large to fetch).
        size: its size in bytes, for the message.
        numbers: keys that must be present and hold numbers.
        texts: keys that must be present and hold text.

    Example:
        >>> parse_row('{"method": "a", "psnr": 30.5}', numbers=["psnr"])
        ({'method': 'a', 'psnr': 30.5}, '')
        >>> parse_row('{"method": "a", "psnr": "30"}')[1]
        'psnr is str, not a number'
    """
    row, why = _json_object(text, size)
    if row is None:
        return None, why
    for key in (*numbers, *texts):
        if key not in row:
            return None, f"no {key!r}"
    for key, value in row.items():
        if (problem := _value_problem(key, value, texts)) is not None:
            return None, problem
    numbers_in = {k for k in row if k not in TEXT_KEYS and k not in texts}
    return {k: (math.nan if v is None and k in numbers_in else v) for k, v in row.items()}, ""


def _where(filters: Mapping[str, Sequence[Any]] | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (filters or {}).items():
        if column not in FILTER_COLUMNS:
            raise ValueError(f"filters: unknown column {column!r}; valid: {', '.join(FILTER_COLUMNS)}")
        if not values:
            continue
        expression = _METHOD if column == "method" else column
        clauses.append(f"{expression} IN ({','.join('?' * len(values))})")
        params += [str(v) if column != "scale" else int(v) for v in values]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _field(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value[:_MAX_FIELD_CHARS] if isinstance(value, str) else value


def _timestamp(created: Any) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(float(created), unit="s", tz="UTC")
    except (TypeError, ValueError, OverflowError):  # NULL, NaN, out of range: no time, not a crash
        return pd.NaT


def read_table(
    conn: sqlite3.Connection,
    name: str,
    *,
    limit: int = 10_000,
    offset: int = 0,
    filters: Mapping[str, Sequence[Any]] | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    max_bytes: int = 64 * 1024**2,
) -> Any:
    """One page of valid rows of an open, verified results database (:func:`gvcore.eval.results_db.read_results`)."""
    import pandas as pd

    for label, value in (("limit", limit), ("max_row_bytes", max_row_bytes), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive int; got {value!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative int; got {offset!r}")
    where, params = _where(filters)
    total = int(conn.execute(f"SELECT COUNT(*) FROM results{where}", params).fetchone()[0])
    size = "length(CAST(row AS BLOB))"
    cursor = conn.execute(
        f"SELECT key, CASE WHEN {size} <= ? THEN row END, {size}, substr(data, 1, {_MAX_FIELD_CHARS}), "
        f"substr(checkpoint, 1, {_MAX_FIELD_CHARS}), substr(gvcore_version, 1, 64), "
        f"substr(settings, 1, {_MAX_FIELD_CHARS}), "
        "CASE WHEN typeof(created) IN ('real', 'integer') THEN created END "
        f"FROM results{where} ORDER BY created DESC, key LIMIT ? OFFSET ?",
        [max_row_bytes, *params, limit, offset],
    )
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    read = 0
    truncated = False
    for key, text, nbytes, data, checkpoint, version, settings, created in cursor:
        if read >= max_bytes:
            truncated = True
            break
        read += int(nbytes or 0) if text is not None else 0
        row, problem = parse_row(text, nbytes)
        if row is None:
            skipped.append(f"{name}: row {str(key)[:16]} skipped ({problem})")
            continue
        record = dict.fromkeys(TABLE_COLUMNS) | row
        record.update(
            data=_field(data),
            checkpoint=_field(checkpoint),
            gvcore_version=_field(version),
            settings=_field(settings),
        )
        record["created"] = _timestamp(created)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame.attrs.update(total=total, skipped=skipped, truncated=truncated)
    return frame


def overview(conn: sqlite3.Connection, *, max_values: int = 500) -> dict[str, Any]:
    """How many rows an open, verified database holds and the values its filters can take (bounded).

    Returns:
        ``{"total": int, "data": [...], "protocol": [...], "scale": [...], "method": [...]}``: at most
        ``max_values`` distinct values per column, text cut to 1 KiB, scales as ints, methods from rows that
        are valid JSON.
    """
    total = int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    values: dict[str, Any] = {"total": total}
    text = f"substr(CAST({{}} AS TEXT), 1, {_MAX_FIELD_CHARS})"
    queries = {
        "data": f"SELECT DISTINCT {text.format('data')} AS v FROM results WHERE typeof(data) = 'text'",
        "protocol": f"SELECT DISTINCT {text.format('protocol')} AS v FROM results WHERE typeof(protocol) = 'text'",
        "scale": "SELECT DISTINCT scale AS v FROM results WHERE typeof(scale) = 'integer'",
        "method": f"SELECT DISTINCT v FROM (SELECT {_METHOD} AS v FROM results "
        f"WHERE length(CAST(row AS BLOB)) <= {DEFAULT_MAX_ROW_BYTES}) WHERE typeof(v) = 'text'",
    }
    for column, query in queries.items():
        found = [v for (v,) in conn.execute(f"{query} ORDER BY v LIMIT ?", (max_values,))]
        values[column] = [_field(v) for v in found]
    return values
