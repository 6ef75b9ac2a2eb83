"""The chart element (dashboard/charts.py): the plotly.js bundle it serves, the figure it sends, the selection."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
import pytest

from dashboard import charts

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "dashboard" / "static"
#: trace types plotly.js's cartesian bundle holds (its README), the ones a figure may use
CARTESIAN_TRACES = {
    "Bar",
    "Box",
    "Contour",
    "Heatmap",
    "Histogram",
    "Histogram2d",
    "Histogram2dContour",
    "Image",
}
CARTESIAN_TRACES |= {"Pie", "Scatter", "Scatterternary", "Violin"}


def _bundle_version() -> str:
    head = (STATIC / charts.BUNDLE).read_text(encoding="utf-8")[:300]
    match = re.search(r"plotly\.js \(cartesian - minified\) v(\d+\.\d+\.\d+)", head)
    assert match, "the bundle's header names plotly.js's cartesian bundle and its version"
    return match.group(1)


def test_the_served_bundle_is_plotly_js_cartesian_of_plotly_pys_major_version() -> None:
    """The figures are serialised by plotly.py: its plotly.js and the bundle must read the same figure JSON."""
    from plotly.offline import get_plotlyjs_version

    version = _bundle_version()
    assert version in charts.BUNDLE  # the file name says which version it is (a new name on every update)
    assert version.split(".")[0] == get_plotlyjs_version().split(".")[0], plotly.__version__
    assert "MIT" in (STATIC / "plotly.js-LICENSE.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in STATIC.iterdir()) == sorted([charts.BUNDLE, "plotly.js-LICENSE.txt"])


def test_every_trace_the_dashboard_draws_is_in_the_bundle() -> None:
    from plotly.basedatatypes import BaseTraceType

    traces = set()
    for path in [*(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "go":
                kind = getattr(go, node.attr, None)
                if isinstance(kind, type) and issubclass(kind, BaseTraceType):
                    traces.add(node.attr)
    assert traces, "the dashboard's figures use some trace types"
    assert traces <= CARTESIAN_TRACES, traces - CARTESIAN_TRACES


def test_the_figure_is_sent_with_the_dashboards_template_and_left_unchanged() -> None:
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    fig.update_layout(height=300)
    sent = json.loads(charts.figure_json(fig))
    assert sent["layout"]["template"]["layout"]["colorway"] == list(charts.COLORS)
    assert sent["layout"]["height"] == 300
    assert fig.layout.template.layout.colorway != tuple(charts.COLORS)  # the caller's figure keeps its own


@pytest.mark.parametrize(
    ("base", "url"),
    [("", "/app/static/"), ("/", "/app/static/"), ("lab", "/lab/app/static/"), ("/a/b/", "/a/b/app/static/")],
)
def test_the_bundle_url_follows_the_base_url_path(base: str, url: str) -> None:
    assert charts.bundle_url(base) == url + charts.BUNDLE


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"selection": None},
        {"selection": {"box": []}},
        {"selection": {"box": ["x"]}},
        {"selection": {"box": [{"x": [1.0]}]}},
        {"selection": {"lasso": [{}]}},
    ],
)
def test_no_box_is_no_selection(value: object) -> None:
    assert charts.selection_box(value) == []


def test_a_box_is_its_x_range_read_as_floats() -> None:
    assert charts.selection_box({"selection": {"box": [{"x": [-2, "0.5"], "y": [0, 1]}]}}) == [-2.0, 0.5]
