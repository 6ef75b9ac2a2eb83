"""The dashboard's chart element: a Plotly figure drawn by the dashboard's own plotly.js build, in the page itself.

Why not ``st.plotly_chart``: it loads Streamlit's Plotly chunk, the full plotly.js (4.7 MB, every trace type: maps,
3-D, finance...), and a new browser session evaluates it before drawing its first chart; that was most of what a
dashboard page cost over a one-line page (``bench/bench_page_profile.py``; ``bench/bench_page_parts.py``: one
``st.plotly_chart`` +1.7 s, one chart drawn here +1.0 s). The figures use four trace types (scatter, bar, heatmap,
image). ``scripts/plotly_bundle/`` builds plotly.js 4.1.1's core with those three traces (1.3 MB; plotly.js's
own cartesian bundle, 1.5 MB with eight more trace types, took 2.9x as long to load and evaluate in Chromium,
1.7x as long to load and draw a first figure: ``bench/bench_plotly_bundle.py``); ``dashboard/static/`` holds the build (MIT licence beside it) and the server serves it
(``server.enableStaticServing``, set by ``gvcore dashboard``). A Streamlit v2 component (``dashboard/chart.js``,
no iframe) loads it once per page and draws each figure with its own config. A figure with a trace type the
build does not register is refused by name (:func:`plot`), not drawn blank.

The figure is drawn with :data:`TEMPLATE` (the dashboard's light theme), not with Streamlit's chart theme, which
only ``st.plotly_chart`` applies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.io.json import to_json_plotly

from dashboard.figures.axes import COLORS

__all__ = [
    "BUNDLE",
    "COMPONENT_NAME",
    "TEMPLATE",
    "bundle_header",
    "bundle_traces",
    "bundle_url",
    "figure_json",
    "plot",
    "selection_box",
]

#: the plotly.js bundle the charts are drawn with, in ``dashboard/static/`` (served at ``/app/static/``), built by
#: ``scripts/plotly_bundle/``: plotly.js's core and the trace types the figures use (:func:`bundle_traces`)
BUNDLE = "plotly-gvlab-4.1.1.min.js"
_HEADER = re.compile(r"plotly\.js \(gvlab: ([a-z0-9, ]+) - minified\) v(\d+\.\d+\.\d+)")
#: the chart component's name (one per app)
COMPONENT_NAME = "gvlab_chart"
#: the height a figure without one gets, in px (``st.plotly_chart``'s too)
DEFAULT_HEIGHT = 450

_INK = "rgb(49, 51, 63)"  # Streamlit's light theme's text colour
_GRID = "rgba(49, 51, 63, 0.12)"
_FONT = "'Source Sans', 'Source Sans Pro', sans-serif"  # the font the app loads

#: the charts' look: the app's font and text colour, white ground, light grid, the dashboard's palette
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": _FONT, "color": _INK, "size": 13},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "white",
        "colorway": list(COLORS),
        "hovermode": "closest",
        "hoverlabel": {"font": {"family": _FONT}},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "xaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "ticks": "", "automargin": True},
        "yaxis": {"gridcolor": _GRID, "zerolinecolor": _GRID, "ticks": "", "automargin": True},
        "legend": {"bgcolor": "rgba(255,255,255,0.6)"},
        "colorscale": {"sequential": "Viridis"},
    }
)


@functools.cache
def _component() -> Callable[..., Any]:
    """The registered component (registered once per process: Streamlit warns on a second registration)."""
    js = (Path(__file__).with_name("chart.js")).read_text(encoding="utf-8")
    return st.components.v2.component(COMPONENT_NAME, js=js, isolate_styles=False)


@functools.cache
def bundle_header() -> tuple[tuple[str, ...], str]:
    """``(trace types, plotly.js version)`` that :data:`BUNDLE`'s header names (``scripts/plotly_bundle/build.js``)."""
    head = Path(__file__).with_name("static").joinpath(BUNDLE).read_text(encoding="utf-8")[:400]
    match = _HEADER.search(head)
    if match is None:
        raise RuntimeError(
            f"dashboard/static/{BUNDLE} has no gvlab header: rebuild it (scripts/plotly_bundle/)"
        )
    return tuple(t.strip() for t in match.group(1).split(",")), match.group(2)


def bundle_traces() -> tuple[str, ...]:
    """The trace types :data:`BUNDLE` registers, as plotly names them.

    Example:
        >>> bundle_traces()
        ('scatter', 'bar', 'heatmap', 'image')
    """
    return bundle_header()[0]


def bundle_url(base_path: str | None = None) -> str:
    """The URL path of :data:`BUNDLE` under the server's ``server.baseUrlPath`` (read from the config if ``None``).

    Example:
        >>> bundle_url(""), bundle_url("/lab/")
        ('/app/static/plotly-gvlab-4.1.1.min.js', '/lab/app/static/plotly-gvlab-4.1.1.min.js')
    """
    if base_path is None:
        base_path = str(st.get_option("server.baseUrlPath") or "")
    base = re.sub(r"^/+|/+$", "", base_path)
    return f"/{base}/app/static/{BUNDLE}" if base else f"/app/static/{BUNDLE}"


@functools.cache
def _template_json() -> dict[str, Any]:
    """:data:`TEMPLATE` as a plain dict (validated once, when it was built)."""
    return dict(TEMPLATE.to_plotly_json())


def figure_json(fig: go.Figure) -> str:
    """``fig`` as Plotly JSON (what ``fig.to_json()`` says) drawn with :data:`TEMPLATE`; ``fig`` is unchanged.

    The template goes into a copy of the figure's plain dict: copying the figure object instead
    (``go.Figure(fig)``) validates every property again, 2-6x the cost of the serialisation itself.
    """
    plain = fig.to_plotly_json()
    layout = dict(plain["layout"])
    layout["template"] = _template_json()
    return str(to_json_plotly({"data": plain["data"], "layout": layout}))


def plot(
    fig: go.Figure,
    config: Mapping[str, Any],
    key: str,
    on_select: Callable[[], None] | None = None,
) -> Any:
    """Draw ``fig`` with plotly.js ``config``; with ``on_select``, a box selection calls it (:func:`selection_box`)."""
    missing = sorted({trace.type for trace in fig.data} - set(bundle_traces()))
    if missing:  # plotly.js would draw nothing for them, and say nothing
        raise ValueError(
            f"the dashboard's plotly.js does not draw {', '.join(missing)} traces: add them to "
            "TRACES in scripts/plotly_bundle/build.js and rebuild"
        )
    height = fig.layout.height if fig.layout.height is not None else DEFAULT_HEIGHT
    data = {
        "figure": figure_json(fig),
        "config": dict(config),
        "src": bundle_url(),
        "height": int(height),
        "select": on_select is not None,
    }
    if on_select is None:
        return _component()(data=data, key=key, width="stretch")
    return _component()(
        data=data, key=key, default={"selection": None}, width="stretch", on_selection_change=on_select
    )


def selection_box(value: Any) -> list[float]:
    """The x range of the box selected in a chart's state (``st.session_state[key]``), ``[]`` if none.

    Example:
        >>> selection_box({"selection": {"box": [{"x": [0.5, -1.25], "y": [0, 3]}]}})
        [0.5, -1.25]
        >>> selection_box(None), selection_box({"selection": None}), selection_box({"selection": {"box": []}})
        ([], [], [])
    """
    selection = value.get("selection") if isinstance(value, Mapping) else getattr(value, "selection", None)
    box = selection.get("box") if isinstance(selection, Mapping) else getattr(selection, "box", None)
    if not box or not isinstance(box[0], Mapping):
        return []
    xs = box[0].get("x") or []
    return [float(x) for x in xs] if len(xs) == 2 else []
