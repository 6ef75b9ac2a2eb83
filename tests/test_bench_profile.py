"""The page-profile benchmark's bookkeeping: a CDP profile split by where the renderer's main thread was."""

from __future__ import annotations

import pytest

from bench.bench_page_profile import CATEGORIES, split_profile
from dashboard import charts

PLOTLY = "http://127.0.0.1:1/static/js/PlotlyChart.D9Z0_fxz.js"
REACT = "http://127.0.0.1:1/static/js/react-dom.Dzbslgj4.js"


def _node(node_id: int, name: str, url: str = "", children: tuple[int, ...] = ()) -> dict:
    return {"id": node_id, "callFrame": {"functionName": name, "url": url}, "children": list(children)}


#: root -> idle, program, gc, plotly -> getBoundingClientRect, react -> appendChild; a native under the root
PROFILE_NODES = [
    _node(1, "(root)", children=(2, 3, 4, 5, 7, 9)),
    _node(2, "(idle)"),
    _node(3, "(program)"),
    _node(4, "(garbage collector)"),
    _node(5, "draw", PLOTLY, children=(6,)),
    _node(6, "getBoundingClientRect"),
    _node(7, "render", REACT, children=(8,)),
    _node(8, "appendChild"),
    _node(9, "setTimeout"),
]


def _profile(samples: list[int], step_us: int = 1000) -> dict:
    return {"nodes": PROFILE_NODES, "samples": samples, "timeDeltas": [step_us] * len(samples)}


def test_native_calls_count_for_the_script_that_made_them() -> None:
    # sample i is taken at (i + 1) ms and lasts 1 ms (until the next one); the last sample has no duration
    totals = split_profile(_profile([2, 3, 4, 5, 6, 7, 8, 9, 2]), until_s=1.0)
    assert totals == pytest.approx(
        {"idle": 0.001, "browser": 0.002, "gc": 0.001, "plotly": 0.002, "streamlit": 0.002}
    )
    assert set(totals) == set(CATEGORIES)


def test_samples_after_the_settle_moment_are_left_out() -> None:
    # samples at 1, 2, 3, 4 ms; cut at 2.5 ms: the first lasts 1 ms, the second 0.5 ms, the rest not at all
    totals = split_profile(_profile([5, 7, 2, 2]), until_s=0.0025)
    assert totals["plotly"] == pytest.approx(0.001)
    assert totals["streamlit"] == pytest.approx(0.0005)
    assert totals["idle"] == 0.0
    assert sum(totals.values()) == pytest.approx(0.0015)


def test_the_dashboards_plotly_bundle_counts_as_plotly() -> None:
    bundle = f"http://127.0.0.1:1/app/static/{charts.BUNDLE}"
    nodes = [
        _node(1, "(root)", children=(2,)),
        _node(2, "draw", bundle, children=(3,)),
        _node(3, "appendChild"),
    ]
    totals = split_profile({"nodes": nodes, "samples": [2, 3, 2], "timeDeltas": [1000] * 3}, until_s=1.0)
    assert totals["plotly"] == pytest.approx(0.002)
    assert totals["streamlit"] == 0.0
