"""Benchmark page: benchmark sets by name under GVLAB_DATA_ROOTS, and past evaluations from the results database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from gvcore.checkpoint.store import save_checkpoint
from gvcore.eval.evaluate import evaluate
from gvcore.models import build_model
from tests.dashboard_fixtures import tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    data = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    for name in ("baby", "bird"):
        hr = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
        (data / "Set5" / "GTmod12").mkdir(parents=True, exist_ok=True)
        (data / "Set5" / "LRbicx2").mkdir(parents=True, exist_ok=True)
        Image.fromarray(hr).save(data / "Set5" / "GTmod12" / f"{name}.png")
        Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(data / "Set5" / "LRbicx2" / f"{name}.png")
    db = tmp_path_factory.mktemp("db") / "results.sqlite"
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path_factory.mktemp("ck") / "m.safetensors", build_model("espcn", 2), label="mine"
    )
    evaluate([ckpt], data / "Set5", 2, progress=False, cache=db)
    evaluate([], data / "Set5", 2, "official", progress=False, cache=db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(tmp_path_factory.mktemp("assets")))
        patch.setenv("GVLAB_RUNS", str(tmp_path_factory.mktemp("runs")))
        patch.setenv("GVLAB_DATA_ROOTS", str(data))
        patch.setenv("GVLAB_RESULTS_DB", str(db))
        yield {"data": data, "db": db}


def open_benchmark() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    return at


def test_benchmark_set_by_name_uses_its_lr_files(env: dict[str, Path], tmp_path: Path) -> None:
    at = open_benchmark()
    at.radio(key="bm_source").set_value("benchmark set").run()
    assert at.selectbox(key="bm_set").options == ["Set5"]
    at.button(key="live-run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    per_image = at.session_state["live-results"]
    bicubic = per_image[per_image["method"] == "bicubic"]
    assert set(bicubic["lr_source"]) == {"file"}
    given = evaluate([], env["data"] / "Set5", 2, progress=False).set_index("method").loc["bicubic"]
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in (env["data"] / "Set5" / "GTmod12").iterdir():
        (plain / path.name).write_bytes(path.read_bytes())
    synth = evaluate([], plain, 2, progress=False).set_index("method").loc["bicubic"]
    assert bicubic["psnr"].tolist() == given["psnr"].tolist()
    assert bicubic["psnr"].tolist() != synth["psnr"].tolist()  # the flat grey LR files were used


def test_results_database_lists_filters_and_compares(env: dict[str, Path]) -> None:
    at = open_benchmark()
    assert not at.exception
    captions = " ".join(str(c.value) for c in at.caption)
    assert "results.sqlite`: 10 stored per-image results" in captions
    at.multiselect(key="bm_db_protocol").set_value(["standard"]).run()
    assert not at.exception
    means = next(df.value for df in tables(at) if "images" in df.value.columns)
    assert list(means["method"]) == ["HR", "bicubic", "mine"]
    at.multiselect(key="bm_db_method").set_value(["bilinear"]).run()
    assert "No stored result matches" in " ".join(str(i.value) for i in at.info)


def test_a_foreign_database_is_an_error_not_a_traceback(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"not sqlite" * 200)
    monkeypatch.setenv("GVLAB_RESULTS_DB", str(foreign))
    at = open_benchmark()
    assert not at.exception
    errors = " ".join(str(e.value) for e in at.error)
    assert "Cannot read the results database" in errors
    assert str(tmp_path) not in errors
