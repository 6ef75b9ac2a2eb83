"""The chart element (dashboard/charts.py): the plotly.js bundle it serves, the figure it sends, the selection."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest

from dashboard import charts

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "dashboard" / "static"


def test_the_served_bundle_is_plotly_js_of_plotly_pys_major_version() -> None:
    """The figures are serialised by plotly.py: its plotly.js and the bundle must read the same figure JSON."""
    from plotly.offline import get_plotlyjs_version

    version = charts.bundle_header()[1]
    assert version in charts.BUNDLE  # the file name says which version it is (a new name on every update)
    assert version.split(".")[0] == get_plotlyjs_version().split(".")[0], plotly.__version__
    assert "MIT" in (STATIC / "plotly.js-LICENSE.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in STATIC.iterdir()) == sorted([charts.BUNDLE, "plotly.js-LICENSE.txt"])
    # the build that makes it pins that plotly.js
    package = json.loads((ROOT / "scripts" / "plotly_bundle" / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["plotly.js"] == version


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
    registered = {t.capitalize() for t in charts.bundle_traces()}
    assert traces <= registered, f"{traces - registered}: add them to scripts/plotly_bundle/ and rebuild"


def test_a_trace_type_the_bundle_does_not_draw_is_refused_by_name() -> None:
    fig = go.Figure([go.Bar(x=[1], y=[2]), go.Pie(values=[1, 2]), go.Violin(y=[1, 2])])
    with pytest.raises(ValueError, match=r"does not draw pie, violin traces"):
        charts.plot(fig, {}, key="refused")


def test_the_figure_is_sent_with_the_dashboards_template_and_left_unchanged() -> None:
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    fig.update_layout(height=300)
    sent = json.loads(charts.figure_json(fig))
    assert sent["layout"]["template"]["layout"]["colorway"] == list(charts.COLORS)
    assert sent["layout"]["height"] == 300
    assert fig.layout.template.layout.colorway != tuple(charts.COLORS)  # the caller's figure keeps its own


def test_the_figure_is_sent_as_plotly_serialises_it_with_only_the_template_replaced() -> None:
    fig = go.Figure(go.Heatmap(z=np.arange(12.0).reshape(3, 4), colorscale="Inferno"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[2, 3], name="line"))
    fig.update_layout(title="maps", height=320, xaxis={"range": [0, 3]})
    sent, own = json.loads(charts.figure_json(fig)), json.loads(fig.to_json())
    assert sent["data"] == own["data"]
    assert {k: v for k, v in sent["layout"].items() if k != "template"} == {
        k: v for k, v in own["layout"].items() if k != "template"
    }
    assert sent["layout"]["template"] == json.loads(json.dumps(charts.TEMPLATE.to_plotly_json()))


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
