"""The Training snapshots page under AppTest: curves from snapshot folders, the same numbers as ``gvcore eval``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from dashboard.snapshot_figures import iteration_curve
from gvcore.eval.evaluate import evaluate, summarize
from tests.dashboard_fixtures import charts, tables
from tests.snapshot_fixtures import STEPS, make_snapshot_runs

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"


def make_benchmark_root(root: Path) -> Path:
    """A data root holding a tiny BasicSR-layout ``Set5`` (3 images of 48x48, HR only)."""
    rng = np.random.default_rng(4)
    (root / "Set5" / "GTmod12").mkdir(parents=True)
    for name in ("baby", "bird", "head"):
        array = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
        Image.fromarray(array).save(root / "Set5" / "GTmod12" / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    runs = tmp_path_factory.mktemp("runs")
    folders = make_snapshot_runs(runs)
    data = make_benchmark_root(tmp_path_factory.mktemp("data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(tmp_path_factory.mktemp("assets")))
        patch.setenv("GVLAB_RUNS", str(runs))
        patch.setenv("GVLAB_DATA_ROOTS", str(data))
        yield {"runs": runs, "data": data, **folders}


def open_snapshots() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("../pages/snapshots.py").run()
    return at


def test_curves_match_gvcore_eval(env: dict[str, Path]) -> None:
    at = open_snapshots()
    assert not at.exception
    assert at.multiselect(key="snap_folders").value == ["l1", "l1gv"]
    assert at.selectbox(key="snap_images").value == "Set5"
    at.button(key="snap-run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error
    assert len(charts(at)) == 4
    means = tables(at)[0].value
    assert list(means["method"][:2]) == ["HR", "bicubic"]  # the references first, in no run ("—")
    assert means["series"][:2].isna().all()  # shown "—": the table sends values, the text is only displayed
    snapshots = means[means["series"].notna()].astype({"iteration": int})
    shown = snapshots.set_index(["series", "iteration"])
    want = summarize(evaluate([env["l1gv"]], env["data"] / "Set5", progress=False))
    want = want[want["iteration"].notna()].set_index("iteration")
    for step in STEPS:
        assert shown.loc[("l1gv", step), "psnr"] == pytest.approx(want.loc[step, "psnr"], abs=1e-4)


def test_no_snapshots_explained(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GVLAB_RUNS", str(tmp_path))
    at = open_snapshots()
    assert not at.exception
    shown = " ".join(str(i.value) for i in at.info)
    assert "--keep-snapshots" in shown
    assert f"`{tmp_path.name}`" in shown
    assert str(tmp_path) not in shown


def test_a_fresh_install_shows_the_shipped_curves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped runs (assets/runs) come scored: curves without pressing anything, and nothing is scored."""
    for name in ("GVLAB_ASSETS", "GVLAB_RUNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GVLAB_DATA_ROOTS", str(tmp_path / "no-data"))
    at = open_snapshots()
    assert not at.exception, [e.message for e in at.exception]
    assert set(at.multiselect(key="snap_folders").value) >= {
        "espcn-x2-l1-snapshots",
        "espcn-x2-l1-gv-snapshots",
    }
    assert len(charts(at)) == 4
    assert not [b for b in at.button if b.key == "snap-run"]  # nothing left to score


def test_a_broken_snapshot_is_a_warning_not_a_traceback(env: dict[str, Path], tmp_path: Path) -> None:
    broken = env["runs"] / "broken" / "snapshots"
    broken.mkdir(parents=True)
    for path in env["l1"].iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "step_000009.safetensors").write_bytes(b"junk")
    try:
        at = open_snapshots()
        at.multiselect(key="snap_folders").set_value(["broken"]).run()
        at.button(key="snap-run").click().run()
        assert not at.exception
        warnings = " ".join(str(w.value) for w in at.warning)
        assert "step_000009.safetensors" in warnings
        assert str(env["runs"]) not in warnings
        assert len(charts(at)) == 4
    finally:
        for path in broken.iterdir():
            path.unlink()
        broken.rmdir()
        broken.parent.rmdir()


def test_iteration_curve_one_trace_per_series() -> None:
    import pandas as pd

    means = pd.DataFrame(
        {
            "series": ["a", "a", "b", "b", "a"],
            "iteration": [2, 1, 1, 2, None],
            "psnr": [2.0, 1.0, 3.0, 4.0, 9.0],
        }
    )
    fig = iteration_curve(means, "psnr", baseline=2.5)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].y) == [1.0, 2.0]
    with pytest.raises(ValueError, match="metric must be one of"):
        iteration_curve(means, "loss")
