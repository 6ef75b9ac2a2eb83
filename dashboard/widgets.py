"""Small Streamlit building blocks shared by the pages.

Charts with PNG/SVG export, tables with CSV download, image pickers (bundled sample or upload) and the
downsampling note. These are the only dashboard building blocks that call ``st.*``; the figures themselves
come from :mod:`dashboard.figures`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import io
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dashboard import charts, loaders, state
from dashboard.figures.axes import plotly_config
from dashboard.safety import IMAGE_SUFFIXES, UploadError

__all__ = [
    "ChosenImage",
    "chart",
    "choose_image",
    "details",
    "downsample_note",
    "export_format",
    "html_table",
    "labels",
    "table",
]

FIGURE_FORMAT_KEY = "figure_format"


def export_format() -> str:
    """The figure export format chosen in the sidebar (``"png"`` or ``"svg"``)."""
    return str(st.session_state.get(FIGURE_FORMAT_KEY, "png"))


def labels(names: dict[Any, str]) -> Callable[[Any], str]:
    """A widget's ``format_func`` showing ``names[option]`` (``str(option)`` for an option not in ``names``).

    Pages pass this rather than a lambda: a function created by a page script refers to the page's globals, and
    Streamlit keeps a widget's ``format_func`` in the session after the run, which would keep all of the page's
    data alive with it.
    """
    return lambda option: names.get(option, str(option))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "figure"


def chart(
    fig: go.Figure, name: str, key: str | None = None, on_select: Callable[[], None] | None = None
) -> Any:
    """Draw ``fig`` (:func:`dashboard.charts.plot`), its export button set to the sidebar's format and ``name``.

    With ``on_select``, dragging a box on the chart calls it; :func:`dashboard.charts.selection_box` reads the box
    from ``st.session_state[key]``.
    """
    return charts.plot(
        fig,
        plotly_config(export_format(), _slug(name)),
        key=key or f"chart-{_slug(name)}",
        on_select=on_select,
    )


#: the text an empty cell shows
EMPTY = "—"
#: a longer table shows this many rows until "Show all" is on
PREVIEW_ROWS = 15
#: tables up to this many rows are static HTML tables; larger ones the interactive grid (``st.dataframe``)
STATIC_MAX_ROWS = 200
#: a static table of more rows than this scrolls (sticky header) instead of growing
SCROLL_AFTER_ROWS = 15
#: the height of one static-table row in px (header included), for the scrolling height
ROW_PX = 35
#: tables up to this many cells are shown with empty cells as "—" in the grid; larger ones as they are
STYLED_MAX_CELLS = 100_000
#: the static tables' look (scoped by the ``gv-table`` class; the theme's font and colours are kept)
_TABLE_STYLE = """<style>
.gv-table-wrap { overflow: auto; border: 1px solid rgba(128, 128, 128, 0.25); border-radius: 0.5rem; }
.gv-table { border-collapse: collapse; width: 100%; font-size: 0.875rem; }
.gv-table th, .gv-table td { padding: 0.3rem 0.6rem; border-bottom: 1px solid rgba(128, 128, 128, 0.2);
  text-align: left; white-space: nowrap; }
.gv-table th { position: sticky; top: 0; background: rgb(245, 246, 248); font-weight: 600; }
.gv-table td.gv-num { text-align: right; font-variant-numeric: tabular-nums; }
</style>"""


def cell_text(value: Any) -> str:
    """How a static table shows one cell: "—" for an empty (or infinite) one, floats as Python prints them.

    ``str`` of a float is the shortest text that reads back to the same float, so a shown value is the CSV's
    value (pages round their tables before showing them).

    Example:
        >>> [cell_text(v) for v in (None, float("nan"), float("inf"), 30.1234, 2, "a_b*c")]
        ['—', '—', '—', '30.1234', '2', 'a_b*c']
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return EMPTY
    if isinstance(value, (float, np.floating)):
        return str(float(value))
    try:
        if pd.isna(value):
            return EMPTY
    except (TypeError, ValueError):  # a list or an array in a cell: shown as text
        pass
    return str(value)


def html_table(frame: pd.DataFrame, links: Mapping[str, str] | None = None) -> str:
    """``frame`` as a static HTML table: every cell's :func:`cell_text`, escaped; numbers aligned right.

    ``links`` columns (``{column: link text}``) hold relative URLs (``./page?...``), shown as links with that text
    ("—" where empty or not relative). More than :data:`SCROLL_AFTER_ROWS` rows scroll under a sticky header.
    HTML and CSS only: unlike ``st.table`` it needs no table code in the browser (0.25 s of a visit,
    ``bench/bench_page_parts.py``).

    Example:
        >>> page = html_table(pd.DataFrame({"method": ["a<b", None], "psnr": [30.5, float("nan")]}))
        >>> "<td>a&lt;b</td>" in page and '<td class="gv-num">30.5</td>' in page and page.count("—") == 2
        True
    """
    links = dict(links or {})
    numeric = {
        column
        for column in frame.columns
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
    }
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            if column in links:
                url = value if isinstance(value, str) and value.startswith("./") else None
                text = (
                    f'<a href="{html.escape(url)}" target="_self">{html.escape(links[column])}</a>'
                    if url
                    else EMPTY
                )
                cells.append(f"<td>{text}</td>")
            else:
                kind = ' class="gv-num"' if column in numeric else ""
                cells.append(f"<td{kind}>{html.escape(cell_text(value))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    height = (
        f' style="max-height:{ROW_PX * (SCROLL_AFTER_ROWS + 1)}px"' if len(frame) > SCROLL_AFTER_ROWS else ""
    )
    return (
        f'{_TABLE_STYLE}<div class="gv-table-wrap"{height}><table class="gv-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def with_dashes(frame: pd.DataFrame) -> Any:
    """``frame`` styled for the interactive grid so that every empty cell reads "—", not "None".

    The grid draws a null cell as "None" whatever a Styler's ``na_rep`` says, but it draws a non-null cell's
    display value: so a float column's empty (and infinite) cells hold ``inf`` and are displayed "—" (they sort
    last), and another column with empty cells is shown as text. Values are otherwise unchanged; tables of more
    than :data:`STYLED_MAX_CELLS` cells are returned as they are.

    Example:
        >>> shown = with_dashes(pd.DataFrame({"method": ["HR", "a"], "psnr": [None, 30.0], "arch": [None, "x"]}))
        >>> shown.data["arch"].tolist(), shown.data["psnr"].tolist()
        (['—', 'x'], [inf, 30.0])
        >>> "—" in shown.to_html() and "30.0" in shown.to_html()
        True
    """
    if frame.size > STYLED_MAX_CELLS:
        return frame
    shown = frame.copy()
    numbers = []
    for column in shown.columns:
        values = shown[column]
        if pd.api.types.is_float_dtype(values):
            empty = ~pd.Series(np.isfinite(values.to_numpy(dtype=float)), index=values.index)
            if empty.any():
                shown[column] = values.where(~empty, math.inf)
                numbers.append(column)
        elif values.isna().any():
            shown[column] = values.map(lambda v: EMPTY if pd.isna(v) else str(v))
    return shown.style.format(cell_text, subset=numbers)


#: how long a page pauses after its first screen, so the browser draws it before the rest arrives (s)
FIRST_SCREEN_PAUSE_S = 0.15
_FIRST_SCREEN_KEY = "_gv_first_screen_painted"
_pause = time.sleep  # (tests count the pauses through this name)


def let_the_first_screen_paint() -> None:
    """Pause :data:`FIRST_SCREEN_PAUSE_S` so the browser draws what the page sent so far before the rest arrives.

    Observed in Chromium (``bench/README.md``): elements that reach the browser in the same moment as a page's
    first Plotly chart are shown together with it, once plotly.js (a 4.7 MB chunk) has loaded and run, about 1.4 s
    later on a 2-core machine; sent a moment earlier, they are drawn at once. A page calls this after its first
    screen (made of elements that need no chart code) and before its charts. Once per session: after that the
    browser has the chart code, and a rerun (a moved control) does not wait.
    """
    if st.session_state.get(_FIRST_SCREEN_KEY):
        return
    st.session_state[_FIRST_SCREEN_KEY] = True
    _pause(FIRST_SCREEN_PAUSE_S)


def table(
    frame: pd.DataFrame, name: str, key: str | None = None, links: Mapping[str, str] | None = None
) -> None:
    """A table and its CSV download; empty cells read "—" (not "None"), the values themselves unchanged.

    A table of more than :data:`PREVIEW_ROWS` rows shows its first :data:`PREVIEW_ROWS` (pages put the rows
    that matter first) and a "Show all" toggle: a page's first paint then costs the browser a few hundred cells,
    not thousands (``bench/README.md``, "Where a page's time goes"); the CSV always holds every row.
    Up to :data:`STATIC_MAX_ROWS` rows it is a static HTML table (:func:`html_table`: text that can be selected
    and copied), scrolling past :data:`SCROLL_AFTER_ROWS` rows; larger tables are the interactive grid
    (``st.dataframe``: sorting, resizing). ``links`` (``{column: link text}``) names columns of URLs, shown as
    links with that text in both.
    """
    key = key or f"csv-{_slug(name)}"
    rows = len(frame)
    show_all = rows <= PREVIEW_ROWS or st.toggle(
        f"Show all {rows} rows", key=f"{key}-all", help=f"Shown: the first {PREVIEW_ROWS} rows."
    )
    shown = frame if show_all else frame.head(PREVIEW_ROWS)
    if len(shown) <= STATIC_MAX_ROWS:
        st.html(html_table(shown, links))
    else:
        config = {
            column: st.column_config.LinkColumn(column, display_text=text)
            for column, text in (links or {}).items()
        }
        st.dataframe(with_dashes(shown), hide_index=True, column_config=config or None)
    st.download_button(
        f"Download {name} (CSV)" if show_all else f"Download {name}, all {rows} rows (CSV)",
        frame.to_csv(index=False).encode(),
        file_name=f"{_slug(name)}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
    )


@contextlib.contextmanager
def details(label: str, key: str) -> Iterator[bool]:
    """A closed expander whose content is computed and sent only while it is open (yields whether it is).

    Use as ``with widgets.details(label, key) as opened: if opened: ...`` (``st.expander`` with ``on_change="rerun"``: opening it reruns the page, which then renders the content.)
    A closed ``st.expander`` would still send its content with the page, for the browser to lay out unseen.
    """
    with st.expander(label, key=key, on_change="rerun") as box:
        yield bool(box.open)


def downsample_note(factor: int, size: tuple[int, int], what: str = "images") -> None:
    """Tell the reader when a view shows fewer pixels than were computed."""
    if factor > 1:
        st.caption(
            f":information_source: The {what} are {size[1]}x{size[0]} pixels; shown downsampled by {factor}x for display "
            "(computation uses full resolution)."
        )


@dataclass(frozen=True)
class ChosenImage:
    """An image picked by :func:`choose_image`: a cache key, a display name and a way to get its tensor.

    It holds no pixels: :attr:`tensor` asks the data cache each time (decoding the file or upload again when
    the cache dropped it). A session keeps what its fragments were called with until its next full run, and
    a server keeps disconnected sessions for a while, so an image passed along as a tensor would be memory
    that no cache bounds; pass a ``ChosenImage`` instead.
    """

    key: str
    name: str
    load: Callable[[], torch.Tensor] = field(repr=False, compare=False)
    pixels: int = 0  # H * W (from the file's header), for :func:`dashboard.admission.large_image_slot`

    @property
    def tensor(self) -> torch.Tensor:
        """The image as ``(1, 3, H, W)`` float32, through the data cache; do not keep it past the page run."""
        return self.load()


def header_pixels(source: bytes | str) -> int:
    """``H * W`` of an image file (bytes or path) from its header, without decoding it; 0 when unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
    except Exception:  # the decoder says why when the image is decoded
        return 0
    return int(width) * int(height)


def choose_image(
    prefix: str, label: str = "Image", allow_upload: bool = True, admit: Callable[[int], object] | None = None
) -> ChosenImage | None:
    """A bundled sample or an uploaded image. Upload problems show ``st.error`` and return ``None``.

    ``admit`` is called with an upload's pixel count (from its header) before it is decoded: a page passes
    :func:`dashboard.admission.large_image_slot` entered for the rest of its run, so a large upload waits for
    its turn before any of its memory is taken.
    """
    samples = loaders.bundled_images()
    options = ["Bundled sample"] + (["Upload"] if allow_upload else [])
    source = st.radio(f"{label} source", options, horizontal=True, key=f"{prefix}-source")
    if source == "Upload":
        upload = st.file_uploader(
            f"{label} (PNG, JPEG, BMP, TIFF, WebP)",
            type=[s.lstrip(".") for s in IMAGE_SUFFIXES],
            key=f"{prefix}-upload",
        )
        if upload is None:
            st.info("Upload an image, or switch to a bundled sample.")
            return None
        data = upload.getvalue()  # the bytes Streamlit already holds for this session's upload (no copy)
        digest = hashlib.sha256(data).hexdigest()[:16]
        # refusals are remembered by content (per session, bounded), so a rerun never decodes a bad file again
        refused = state.remember_refusals(st.session_state, f"{prefix}-refused-uploads")
        if digest in refused:
            st.error(f"Cannot use this image — {refused[digest]}")
            return None
        pixels = header_pixels(data)
        if admit is not None:
            admit(pixels)
        load = functools.partial(loaders.decoded_upload, upload.name, digest, state.max_upload_pixels(), data)
        try:
            load()
        except UploadError as err:
            refused[digest] = str(err)
            st.error(f"Cannot use this image — {err}")
            return None
        return ChosenImage(f"upload:{digest}", upload.name, load, pixels)
    if not samples:
        st.error("No bundled sample images found (scikit-image's data folder is missing).")
        return None
    name = st.selectbox(label, list(samples), key=f"{prefix}-sample")
    path = samples[name]
    return ChosenImage(
        f"file:{path}",
        name,
        functools.partial(loaders.load_image_file, path, loaders.file_key(path)),
        header_pixels(path),
    )


def as_display(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Downsample an ``(H, W, 3)`` uint8 image for display when larger than :data:`state.DISPLAY_MAX_SIDE`."""
    from dashboard.analysis import resize_for_display

    return resize_for_display(image, state.DISPLAY_MAX_SIDE)
