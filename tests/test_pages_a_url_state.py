"""The Observation, Compare and Variance explorer pages: a link reopens the same view; one difference convention.

Each page keeps the state that defines its view in the URL (its widgets are bound to query parameters by their
keys, and the image picker's bundled sample is written there too): opening the page with those parameters shows
the same image, models, scale, protocol, crop, λ, difference factor, tab and settings. Compare draws its
before/after difference as the landing page does: signed, amplified by a stated factor, on mid grey.

Assets are the tiny stand-in of :mod:`tests.dashboard_fixtures` (``GVLAB_ASSETS`` points at it).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from dashboard import analysis, before_after
from dashboard.compare_slider import slider_html
from tests.dashboard_fixtures import charts, serving_environment, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 180


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with serving_environment(tmp_path_factory) as root:
        yield root


def open_at(page: str, params: dict[str, str | list[str]]) -> AppTest:
    """The app opened at ``page`` with the URL's query parameters ``params`` (as a shared link would)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    if page != "observation":
        at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def has_chart(at: AppTest, key: str) -> bool:
    return any(chart.id.endswith(f"-{key}") for chart in charts(at))


def captions(at: AppTest) -> str:
    return " | ".join(str(c.value) for c in at.caption)


def difference_png(at: AppTest) -> np.ndarray:
    """The difference image embedded in Compare's before/after view."""
    (frame,) = at.get("iframe")
    page = str(frame.proto.srcdoc)
    (uri,) = re.findall(r'id="gv-diff" alt="difference" src="data:image/png;base64,([^"]+)"', page)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))))


# --- a link reopens the same view ----------------------------------------------------------------------------
def test_observation_reopens_from_its_url(assets: Path) -> None:
    at = open_at(
        "observation",
        {
            "obs_image": "coins",
            "obs_protocol": "standard",
            "obs_scale": "x2",
            "obs_pair": "espcn",
            "obs_amp": "20",
            "obs_lambda": "0.1",
            "obs-tabs": "Gx gradient",
        },
    )
    assert at.selectbox(key="obs_image").value == "coins"
    assert at.selectbox(key="obs_scale").value == 2
    assert at.selectbox(key="obs_pair").value == "espcn"
    assert at.radio(key="obs_protocol").value == "standard"
    assert at.select_slider(key="obs_amp").value == 20
    assert at.select_slider(key="obs_lambda").value == pytest.approx(0.1)
    assert "(L1+GV - L1) x20" in captions(at)
    assert has_chart(at, "obs-gx")  # the tab named in the URL is the open one
    assert not has_chart(at, "obs-var")
    assert "On *coins* at x2" in " ".join(str(m.value) for m in at.markdown)


@pytest.mark.parametrize(
    ("page", "params", "key"),
    [
        ("observation", {"obs_scale": "x7", "obs_image": "no-such-image", "obs_amp": "1e9"}, "obs_scale"),
        ("compare", {"cmp-scale": "x7", "cmp-crop": "-5", "cmp-view": "sideways"}, "cmp-scale"),
        ("variance_explorer", {"vx-sample": "../../etc/passwd", "vx-operator": "laplace"}, "vx-sample"),
    ],
)
def test_a_hand_edited_url_falls_back_to_the_defaults(
    assets: Path, page: str, params: dict[str, str | list[str]], key: str
) -> None:
    """Values a link cannot hold (an unknown option, a number out of range) open the page on its defaults."""
    default = open_at(page, {})
    at = open_at(page, params)  # no exception, no error box (open_at checks both)
    assert at.selectbox(key=key).value == default.selectbox(key=key).value
    assert len(charts(at)) == len(charts(default))  # the same view, fully drawn


def test_compare_reopens_from_its_url(assets: Path) -> None:
    params: dict[str, str | list[str]] = {
        "cmp-sample": "coins",
        "cmp-protocol": "standard",
        "cmp-scale": "x2",
        "cmp-bundled-standard-2": ["ESPCN L1+GV x2"],
        "cmp-crop": "32",
        "cmp-top": "10",
        "cmp-left-px": "20",
        "cmp-view": before_after.VIEWS["difference"],
        "cmp-amplify": "20",
        "cmp-zoom": "2",
        "cmp-tabs": "Error maps",
    }
    at = open_at("compare", params)
    assert at.selectbox(key="cmp-sample").value == "coins"
    assert at.selectbox(key="cmp-scale").value == 2
    assert at.multiselect(key="cmp-bundled-standard-2").value == ["ESPCN L1+GV x2"]
    assert list(tables(at)[0].value["method"]) == ["HR", "bicubic", "ESPCN L1+GV x2"]
    assert (at.slider(key="cmp-crop").value, at.slider(key="cmp-top").value) == (32, 10)
    assert at.slider(key="cmp-left-px").value == 20
    assert at.radio(key="cmp-view").value == "difference"
    assert at.select_slider(key="cmp-amplify").value == 20
    assert at.select_slider(key="cmp-zoom").value == 2
    assert has_chart(at, "cmp-errors")
    assert not has_chart(at, "cmp-deficit")
    assert "x20" in captions(at)


def test_compare_keeps_the_atlas_link_and_writes_the_sample(assets: Path) -> None:
    at = open_at(
        "compare", {"image": "coins", "scale": "2", "protocol": "standard", "top": "64", "size": "32"}
    )
    assert at.selectbox(key="cmp-sample").value == "coins"
    assert (at.slider(key="cmp-top").value, at.slider(key="cmp-crop").value) == (64, 32)
    assert at.query_params["cmp-sample"] == "coins"  # the picked sample is in the URL, for the next link
    at.slider(key="cmp-top").set_value(8).run()  # moving a control does not re-apply the atlas link
    assert at.slider(key="cmp-top").value == 8


def test_variance_explorer_reopens_from_its_url(assets: Path) -> None:
    at = open_at(
        "variance_explorer",
        {
            "vx-sample": "coins",
            "vx-operator": "scharr",
            "vx-padding": "reflect",
            "vx-patch": "16",
            "vx-unbiased": "biased (p²)",
            "vx-second": "a degraded copy",
            "vx-degrade": "jpeg",
            "vx-amount-jpeg": "50",
            "vx-range": ["-2.0", "-1.0"],
        },
    )
    assert at.selectbox(key="vx-sample").value == "coins"
    assert (at.selectbox(key="vx-operator").value, at.selectbox(key="vx-padding").value) == (
        "scharr",
        "reflect",
    )
    assert at.select_slider(key="vx-patch").value == 16
    assert at.radio(key="vx-second").value == "a degraded copy"
    assert at.slider(key="vx-amount-jpeg").value == 50
    text = captions(at)
    assert "patches of 16x16 pixels" in text
    assert "(scharr, reflect padding, gray, biased;" in text
    assert at.slider(key="vx-range").value == pytest.approx((-2.0, -1.0))
    assert "(log10 variance in [-2.0, -1.0])" in text


# --- one difference convention -------------------------------------------------------------------------------
def test_compare_difference_is_signed_on_mid_grey(assets: Path) -> None:
    """The same output on both sides is mid grey everywhere (|L - R| on black drew it black)."""
    at = open_at(
        "compare",
        {
            "cmp-sample": "coins",
            "cmp-view": before_after.VIEWS["difference"],
            "cmp-left": "HR",
            "cmp-right": "HR",
        },
    )
    same = difference_png(at)
    assert same.ndim == 2
    assert (same == 128).all()
    at.selectbox(key="cmp-right").set_value("bicubic").run()
    signed = difference_png(at)
    assert signed.min() < 128 < signed.max()  # both signs: HR is brighter in some places, darker in others
    assert "grey = identical" in captions(at)


def test_slider_difference_is_the_landing_pages_drawing() -> None:
    left = np.full((2, 3, 3), 100, np.uint8)
    right = left.copy()
    right[0, 0] = 103  # right brighter by 3 levels: left - right = -3
    page = slider_html(left, right, "A", "B", mode="difference", difference_factor=10)
    (uri,) = re.findall(r'id="gv-diff" alt="difference" src="data:image/png;base64,([^"]+)"', page)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))))
    expected = analysis.difference_image(np.array([[-3.0, 0, 0], [0, 0, 0]]), 10)
    np.testing.assert_array_equal(shown, expected)
    assert shown[0, 0] == 98
    assert shown[1, 2] == 128
    assert "(A - B) x10" in page


# --- one default pair ----------------------------------------------------------------------------------------
def test_compare_preselects_the_landing_pages_pair(assets: Path) -> None:
    landing = open_at("observation", {})
    arch = str(landing.selectbox(key="obs_pair").value)
    compare = open_at("compare", {})
    picked = compare.multiselect(key="cmp-bundled-standard-2").value
    assert picked == [f"{arch.upper()} L1 x2", f"{arch.upper()} L1+GV x2"]
    assert "Pair chosen by rule" in captions(landing)
    assert "Pair chosen by rule" in captions(compare)
