"""Benchmark, Structure atlas, Training runs and Training snapshots: a link (the URL's query) reopens the same view.

Each page is opened under ``streamlit.testing.v1.AppTest`` with the query parameters a shared link would carry
(``bm_…``, ``atl_…``, ``tr_…``, ``snap_…``), on the fixture assets of :mod:`tests.dashboard_fixtures` (the
snapshots page on the shipped, pre-scored runs), and must show that state: no widget is left at its default.
Nothing here trains or scores a checkpoint beyond the atlas of one small image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_fixtures import charts, serving_environment, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with serving_environment(tmp_path_factory, data_roots=True, empty_results_db=True) as root:
        yield root


def open_link(page: str, query: dict[str, str | list[str]]) -> AppTest:
    """``page`` opened from a link carrying ``query``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.query_params.update(query)
    at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_benchmark_link_reopens_the_same_view(assets: Path) -> None:
    at = open_link(
        "benchmark",
        {
            "bm_tab": "Evaluate checkpoints",
            "bm_protocol": "official",
            "bm_shipped_metric": "ssim",
            "bm_live_protocol": "official",
            "bm_ckpts": ["ESPCN L1+GV x2 official (x2)"],  # a multiselect's URL holds its shown labels
            "bm_source": "server folder",
            "bm_sub": "set",
        },
    )
    assert at.session_state["bm_tab"] == "Evaluate checkpoints"
    assert at.radio(key="bm_protocol").value == "official"
    assert at.radio(key="bm_shipped_metric").value == "ssim"
    assert at.radio(key="bm_live_protocol").value == "official"
    assert at.multiselect(key="bm_ckpts").value == ["ESPCN L1+GV x2 official"]
    assert at.radio(key="bm_source").value == "server folder"
    assert at.selectbox(key="bm_root").value == 0
    assert at.text_input(key="bm_sub").value == "set"
    assert "2 image(s) found." in [c.value for c in at.caption]


def test_benchmark_preselects_the_landing_pair(assets: Path) -> None:
    at = open_link("benchmark", {})
    assert at.multiselect(key="bm_ckpts").value == ["ESPCN L1 x2", "ESPCN L1+GV x2"]
    assert at.query_params == {}  # defaults stay out of the URL


def test_atlas_link_reopens_the_same_atlas(assets: Path) -> None:
    at = open_link(
        "atlas",
        {
            "atl_ckpts": ["ESPCN L1+GV x2", "ESPCN L1 x2"],  # the order is the recovery pair (A, B)
            "atl_dir": "gy",
            "atl_topk": "2",
            "atl_images": "text",
            "atl_use_range": "true",
            "atl_range": ["0.05", "1.2"],
            "atl_rank": "most recovered",
        },
    )
    assert at.multiselect(key="atl_ckpts").value == ["ESPCN L1+GV x2", "ESPCN L1 x2"]
    assert at.radio(key="atl_dir").value == "gy"
    assert at.number_input(key="atl_topk").value == 2
    assert at.multiselect(key="atl_images").value == ["text"]
    assert at.slider(key="atl_range").value == (0.05, 1.2)
    assert at.session_state["atl_rank"] == "most recovered"
    headings = [m.value for m in at.markdown if m.value.startswith("**Where")]
    assert any("ESPCN L1 x2 recovers the most variance relative to ESPCN L1+GV x2" in h for h in headings)
    regions = [m.value for m in at.markdown if m.value.startswith("#")]
    assert regions
    assert all("**text**" in r for r in regions)


def test_atlas_server_folder_is_named_by_folder_only(assets: Path) -> None:
    import os

    at = open_link("atlas", {"atl_source": "server folder", "atl_sub": "set", "atl_images": "img1"})
    root = at.selectbox(key="atl_root")
    data_root = os.environ["GVLAB_DATA_ROOTS"]
    assert root.options == [Path(data_root).name]
    assert at.multiselect(key="atl_images").value == ["img1"]
    assert set(tables(at)[0].value["image"]) == {"img1"}
    shown = " ".join(str(e.value) for e in [*at.caption, *at.markdown, *at.info])
    assert data_root not in shown


def test_training_runs_link_reopens_the_same_runs(assets: Path) -> None:
    at = open_link(
        "training_runs",
        {"tr_runs": "shipped/espcn_x2_l1gv", "tr_logy": "false", "tr_sweep_y": "var_ratio"},
    )
    assert at.multiselect(key="tr_runs").value == ["shipped/espcn_x2_l1gv"]
    assert at.toggle(key="tr_logy").value is False
    assert at.selectbox(key="tr_sweep_y").value == "var_ratio"
    logs = next(df.value for df in tables(at) if "step" in df.value.columns)
    assert set(logs["run"]) == {"shipped/espcn_x2_l1gv"}


def test_snapshots_link_reopens_the_same_curves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the shipped runs (scored before): one folder from the link, its curve only."""
    for name in ("GVLAB_ASSETS", "GVLAB_RUNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GVLAB_DATA_ROOTS", str(tmp_path / "no-data"))
    at = open_link("snapshots", {"snap_folders": "espcn-x2-l1-gv-snapshots"})
    assert at.multiselect(key="snap_folders").value == ["espcn-x2-l1-gv-snapshots"]
    assert len(charts(at)) == 4
    means = tables(at)[0].text
    assert means["method"].iloc[0] == "HR"  # the reference first
    assert set(means["series"]) == {"—", "espcn-x2-l1-gv-snapshots"}  # the references belong to no run
    at = open_link("snapshots", {"snap_protocol": "official"})
    assert at.radio(key="snap_protocol").value == "official"
