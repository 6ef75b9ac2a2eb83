"""Start loading the browser code of charts and tables while the page script still runs.

Streamlit's browser app loads the code of an element type (a JavaScript chunk) only when the first element of
that type arrives. For a Plotly chart that is a 4.7 MB chunk whose download and evaluation take about a second
on a 2-core machine, and it starts only once the page script has reached its first chart. :func:`preload` asks
the browser to import those chunks at the top of every run instead, so their download and evaluation overlap
with the page script (measured in ``bench/README.md``, "Where a page's time goes").

The chunk files carry content hashes that change with the Streamlit version; they are found by name in the
installed Streamlit's static folder. A chunk that is not found is left out (the page then loads it as usual).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import streamlit as st

__all__ = ["CHUNKS", "chunk_files", "preload", "preload_script"]

#: element types every page shows, largest first (the import order)
CHUNKS = ("PlotlyChart", "Table", "DownloadButton")

_CHUNK_FILE = re.compile(r"^(?P<name>[A-Za-z]+)\.[A-Za-z0-9_-]+\.js$")


@functools.cache
def chunk_files(static_js: Path | None = None) -> tuple[str, ...]:
    """The file names of :data:`CHUNKS` in ``static_js`` (default: the installed Streamlit's), in that order."""
    if static_js is None:
        static_js = Path(st.__file__).resolve().parent / "static" / "static" / "js"
    found: dict[str, str] = {}
    if static_js.is_dir():
        for path in static_js.iterdir():
            match = _CHUNK_FILE.match(path.name)
            if match and match["name"] in CHUNKS:
                found[match["name"]] = path.name
    return tuple(found[name] for name in CHUNKS if name in found)


def preload_script(files: tuple[str, ...]) -> str:
    """An inline script importing ``files`` from the folder of Streamlit's own entry script (any base URL path).

    Example:
        >>> "PlotlyChart.abc.js" in preload_script(("PlotlyChart.abc.js",))
        True
        >>> preload_script(())
        ''
    """
    if not files:
        return ""
    return (
        "<script>(() => {"
        "const entry = document.querySelector('script[type=module][src*=\"/static/js/index.\"]');"
        "if (!entry) return;"
        f"for (const file of {json.dumps(list(files))}) import(new URL(file, entry.src).href).catch(() => {{}});"
        "})();</script>"
    )


def preload() -> None:
    """Emit the import of :data:`CHUNKS` into the page (nothing visible; once per browser tab in effect)."""
    script = preload_script(chunk_files())
    if script:
        st.html(script, unsafe_allow_javascript=True)
