"""The Structure atlas page and its links into Compare under ``streamlit.testing.v1.AppTest`` (fixture assets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_fixtures import make_fixture_assets, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_fixture_assets(tmp_path_factory.mktemp("assets"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(root))
        patch.setenv("GVLAB_RUNS", str(root / "runs"))
        yield root


def open_atlas(images: list[str] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/atlas.py")
    if images is not None:
        at.session_state["atl_images"] = images
    return at.run()


def test_page_renders_gallery_and_table(assets: Path) -> None:
    at = open_atlas(["text", "coins"])
    assert not at.exception, [e.message for e in at.exception]
    assert at.title[0].value == "Structure atlas"
    headings = [m.value for m in at.markdown if m.value.startswith("#")]
    assert any("text" in h or "coins" in h for h in headings)


def test_gallery_regions_come_only_from_the_chosen_images(assets: Path) -> None:
    at = open_atlas(["text"])
    regions = [m.value for m in at.markdown if m.value.startswith("#")]
    assert regions
    assert all("**text**" in r for r in regions)


def test_table_links_into_compare_at_the_worst_region(assets: Path) -> None:
    at = open_atlas(["coins"])
    table = tables(at)[0].value
    assert table["method"].iloc[0] == "HR"  # the reference row first, without a link
    row = table[table["method"] != "HR"].iloc[0]
    query = parse_qs(urlparse(row["compare"]).query)
    assert query["image"] == ["coins"]
    assert query["top"] == [str(row["worst_y"])]


def test_no_checkpoint_is_explained(assets: Path) -> None:
    at = open_atlas(["text"])
    at.multiselect(key="atl_ckpts").set_value([]).run()
    assert not at.exception
    assert any("Pick 1 to 8 checkpoints" in i.value for i in at.info)


def test_direction_changes_the_ranking(assets: Path) -> None:
    at = open_atlas(["text", "coins"])
    before = [m.value for m in at.markdown if m.value.startswith("#")]
    at.radio(key="atl_dir").set_value("gy").run()
    after = [m.value for m in at.markdown if m.value.startswith("#")]
    assert not at.exception
    assert before != after


def test_report_download_with_the_sweep(assets: Path) -> None:
    at = open_atlas(["text"])
    at.checkbox(key="atlas-report-sweep").check().run()
    at.button(key="atlas-report-build").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    inputs = at.session_state["atlas-report-inputs"]
    assert len(inputs[-1]) == 3  # the fixture's three sweep checkpoints at x2
    assert len(at.get("download_button")) == 2  # the per-image CSV and the report


def test_compare_opens_at_a_link(assets: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    for key, value in {
        "image": "coins",
        "scale": "2",
        "protocol": "standard",
        "top": "64",
        "left": "96",
    }.items():
        at.query_params[key] = value
    at.query_params["size"] = "32"
    at.switch_page("../pages/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key="cmp-sample").value == "coins"
    assert (at.slider(key="cmp-top").value, at.slider(key="cmp-left-px").value) == (64, 96)


def test_benchmark_offers_the_report(assets: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    at.button(key="live-report-build").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["live-report-inputs"][0][1] == "bundled"
