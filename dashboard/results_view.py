"""The Benchmark page's "Results database" tab: past evaluations, read a bounded page at a time.

Never the whole database in memory: the filters' values come from :func:`gvcore.eval.results_db.results_overview`
(distinct values, bounded), and the rows from :func:`gvcore.eval.results_db.read_results`, one page of
:data:`PAGE_ROWS` rows matching the filters, newest first. Rows the reader cannot trust (not JSON, oversized,
text where a number belongs) are skipped and named in a warning; an unusable file is one error line without
server paths. Nothing here writes to the database. The filters and the page are in the URL (``bm_db_…``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import loaders, state
from dashboard.safety import without_paths

__all__ = ["PAGE_ROWS", "database_path", "page_of_results", "results_database_section", "signature"]

#: rows listed per page (a stored row is well under 2 KiB: a page stays a few MB at most).
PAGE_ROWS = 5000
#: skipped rows named one by one in the warning; the rest are counted.
SHOWN_SKIPS = 5


def database_path() -> Path:
    """The results database the tab lists: ``$GVLAB_RESULTS_DB`` or ``<repo>/runs/results.sqlite``.

    That is where ``gvcore eval --cache`` writes when run from the repository root.
    """
    from gvcore.eval.results_db import default_path

    return default_path(state.REPO_ROOT)


def signature(path: Path) -> str:
    """A cache key that changes whenever the database or its write-ahead log is written."""
    wal = Path(f"{path}-wal")
    return f"{loaders.file_key(path)}:{loaders.file_key(wal) if wal.exists() else 0}"


@st.cache_data(show_spinner=False, max_entries=4, ttl=state.CACHE_TTL_S)
def _overview(path: str, key: str) -> dict[str, Any]:
    del key
    from gvcore.eval import results_db as results_db

    return results_db.results_overview(path)


@st.cache_data(show_spinner=False, max_entries=8, ttl=state.CACHE_TTL_S)
def page_of_results(path: str, key: str, filters: tuple[tuple[str, tuple[Any, ...]], ...], page: int) -> Any:
    """Page ``page`` (from 0) of the rows matching ``filters`` (:func:`gvcore.eval.results_db.read_results`)."""
    del key
    from gvcore.eval import results_db as results_db

    return results_db.read_results(path, limit=PAGE_ROWS, offset=page * PAGE_ROWS, filters=dict(filters))


def _sortable(values: list[Any]) -> list[Any]:
    return sorted(values, key=lambda v: (str(type(v)), v))


def results_database_section(show_results: Callable[[pd.DataFrame, str], None]) -> None:
    """Past evaluations from the results database: filter, page, compare, download.

    Args:
        show_results: the page's view of a tidy evaluation table (means, bars, gains, per-image table).
    """
    from gvcore.eval.results_db import ResultsDBError

    path = database_path()
    if not path.is_file():
        st.info(
            f"No results database at `{path.name}` yet. `gvcore eval --cache` stores every evaluation in "
            "`runs/results.sqlite` (set GVLAB_RESULTS_DB to list another file)."
        )
        return
    key = signature(path)
    try:
        overview = _overview(str(path), key)
    except ResultsDBError as err:
        st.error(f"Cannot read the results database: {without_paths(str(err))}")
        return
    if not overview["total"]:
        st.info("The results database holds no evaluation yet.")
        return
    st.caption(f"`{path.name}`: {overview['total']} stored per-image results.")
    f1, f2, f3, f4 = st.columns(4)
    chosen = {  # in the URL (bm_db_<column>): a link reopens the same filters
        column: box.multiselect(
            title, _sortable(overview[column]), key=f"bm_db_{column}", bind="query-params"
        )
        for box, (column, title) in zip(
            (f1, f2, f3, f4),
            (("data", "Data"), ("protocol", "Protocol"), ("scale", "Scale"), ("method", "Method")),
            strict=True,
        )
    }
    filters = tuple((column, tuple(values)) for column, values in chosen.items() if values)
    page = 0
    try:
        table = page_of_results(str(path), key, filters, page)
        pages = max(1, math.ceil(table.attrs.get("total", 0) / PAGE_ROWS))
        if pages > 1:
            page = (
                int(st.number_input(f"Page (of {pages})", 1, pages, 1, key="bm_db_page", bind="query-params"))
                - 1
            )
            table = page_of_results(str(path), key, filters, page)
    except ResultsDBError as err:
        st.error(f"Cannot read the results database: {without_paths(str(err))}")
        return
    skipped = list(table.attrs.get("skipped", []))
    if skipped:
        more = f" (and {len(skipped) - SHOWN_SKIPS} more)" if len(skipped) > SHOWN_SKIPS else ""
        st.warning(
            f"{len(skipped)} stored row(s) skipped, not valid results: "
            + "; ".join(without_paths(s) for s in skipped[:SHOWN_SKIPS])
            + more
        )
    if table.attrs.get("truncated"):
        st.warning("This page stopped at its memory budget; narrow the filters to see the rest.")
    if table.empty:
        st.info("No stored result matches these filters.")
        return
    if pages > 1:
        first = page * PAGE_ROWS + 1
        st.caption(
            f"Rows {first} to {first + len(table) - 1} of {table.attrs['total']} matching results (page "
            f"{page + 1} of {pages}); the means below are over this page."
        )
    show_results(_in_reading_order(table), "db")


def _in_reading_order(table: pd.DataFrame) -> pd.DataFrame:
    """HR first, then the baselines and controls, then the models by name (the database's own order is arbitrary)."""
    from gvcore.protocol import Protocol

    builtin = ["HR", *(p.baseline for p in Protocol), *(f"{b}+noise" for b in (p.baseline for p in Protocol))]
    rank = {name: k for k, name in enumerate(builtin)}
    order = table["method"].map(lambda m: (rank.get(m, len(rank)), str(m)))
    return table.iloc[sorted(range(len(table)), key=lambda i: order.iloc[i])].reset_index(drop=True)
