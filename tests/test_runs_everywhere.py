"""Your runs everywhere: training runs and checkpoint folders next to the bundled checkpoints.

Training runs (``GVLAB_RUNS``) and checkpoint folders (``GVLAB_CHECKPOINTS``) are offered by Compare and
Benchmark, labelled by their config / metadata label, grouped by source, filtered by the page's protocol, and
a new run appears without a restart. Also ``GVLAB_DEVICE``.

The run is a real 2-step ``gvcore.training.run.train`` run in a temporary folder; the assets root is empty (no
bundled checkpoints), so everything offered comes from the folders made here.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

import gvcore
from dashboard import catalog
from gvcore.training.run import TrainConfig, train
from tests.dashboard_fixtures import tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 180
RUN_LABEL = "my espcn run"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("runs_everywhere")
    runs, own, assets = base / "runs", base / "checkpoints", base / "assets"
    assets.mkdir()
    own.mkdir()
    config = TrainConfig(
        arch="espcn", scale=2, out=str(runs / "mine" / "run-a"), steps=2, batch_size=2, crop=32
    )
    config.device, config.label, config.progress, config.val_every, config.threads = (
        "cpu",
        RUN_LABEL,
        False,
        0,
        1,
    )
    train(config)
    torch.manual_seed(0)
    model = gvcore.build_model("espcn", 2)
    gvcore.save_checkpoint(own / "std.safetensors", model, label="folder std", degradation="standard")
    gvcore.save_checkpoint(own / "off.safetensors", model, label="folder official", degradation="official")
    gvcore.save_checkpoint(own / "x3.safetensors", gvcore.build_model("espcn", 3), label="folder x3")
    (own / "broken.safetensors").write_bytes(b"not a checkpoint")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(assets))
        patch.setenv("GVLAB_RUNS", str(runs))
        patch.setenv("GVLAB_CHECKPOINTS", str(own))
        patch.setenv("GVLAB_DEVICE", "cpu")
        yield {"runs": runs, "own": own, "assets": assets}


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"../pages/{page}.py").run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# --- the listing (dashboard.catalog) ---------------------------------------------------------------------------
def test_run_is_labelled_by_its_config(folders: dict[str, Path]) -> None:
    infos = catalog.run_checkpoint_infos([folders["runs"]])
    assert [(i["label"], i["scale"], i["degradation"], i["group"]) for i in infos] == [
        (RUN_LABEL, 2, "standard", "runs")
    ]


def test_only_the_protocols_checkpoints_are_selectable(folders: dict[str, Path]) -> None:
    groups = {
        "runs": catalog.run_checkpoint_infos([folders["runs"]]),
        "checkpoint folders": catalog.folder_checkpoint_infos([folders["own"]]),
    }
    standard = catalog.selectable_checkpoints("standard", groups)
    official = catalog.selectable_checkpoints("official", groups)
    assert [(c["group"], c["choice"]) for c in standard] == [
        ("runs", RUN_LABEL),
        ("checkpoint folders", "folder std"),
        ("checkpoint folders", "folder x3"),  # no degradation stored: standard
    ]
    assert [c["choice"] for c in official] == ["folder official"]


def test_a_repeated_label_is_made_unique(folders: dict[str, Path], tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    twin.mkdir()
    gvcore.save_checkpoint(twin / "same.safetensors", gvcore.build_model("espcn", 2), label=RUN_LABEL)
    groups = {
        "checkpoint folders": catalog.folder_checkpoint_infos([twin]),
        "runs": catalog.run_checkpoint_infos([folders["runs"]]),
    }
    choices = [c["choice"] for c in catalog.selectable_checkpoints("standard", groups)]
    assert choices == [RUN_LABEL, f"{RUN_LABEL} [twin/same.safetensors]"]  # runs come before folders


def test_signature_changes_when_a_run_appears(folders: dict[str, Path], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(folders["runs"], runs)
    before = catalog.sources_signature([folders["own"]], [runs])
    assert catalog.sources_signature([folders["own"]], [runs]) == before
    shutil.copytree(runs / "mine" / "run-a", runs / "mine" / "run-b")
    assert catalog.sources_signature([folders["own"]], [runs]) != before


# --- the pages -------------------------------------------------------------------------------------------------
def test_compare_offers_runs_and_folders_by_protocol(folders: dict[str, Path]) -> None:
    at = open_page("compare")
    assert_clean(at)
    assert at.multiselect(key="cmp-runs-standard-2").options == [RUN_LABEL]
    assert at.multiselect(key="cmp-folders-standard-2").options == ["folder std"]
    at.multiselect(key="cmp-runs-standard-2").set_value([RUN_LABEL]).run()
    at.multiselect(key="cmp-folders-standard-2").set_value(["folder std"]).run()
    assert_clean(at)
    shown = list(tables(at)[0].value["method"])
    assert RUN_LABEL in shown
    assert "folder std" in shown
    at.radio(key="cmp-protocol").set_value("official").run()
    assert at.multiselect(key="cmp-folders-official-2").options == ["folder official"]
    assert at.multiselect(key="cmp-runs-official-2").options == []


def test_a_new_run_appears_without_a_restart(folders: dict[str, Path]) -> None:
    at = open_page("compare")
    assert at.multiselect(key="cmp-runs-standard-2").options == [RUN_LABEL]
    new = folders["runs"] / "mine" / "run-new"
    shutil.copytree(folders["runs"] / "mine" / "run-a", new)
    config = json.loads((new / "config.json").read_text())
    (new / "config.json").write_text(json.dumps(config | {"label": "brand new run"}))
    try:
        at.run()
        assert sorted(at.multiselect(key="cmp-runs-standard-2").options) == ["brand new run", RUN_LABEL]
    finally:
        shutil.rmtree(new)


def test_benchmark_evaluates_a_run_and_a_folder_checkpoint(folders: dict[str, Path]) -> None:
    at = open_page("benchmark")
    assert_clean(at)
    assert at.multiselect(key="bm_ckpts").options == []  # no bundled checkpoints here
    assert at.multiselect(key="bm_folders").options == [
        "folder std (x2)",
        "folder x3 (x3)",
    ]
    at.multiselect(key="bm_runs").set_value([RUN_LABEL])
    at.multiselect(key="bm_folders").set_value(["folder std"]).run()
    at.button(key="live-run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    live = at.session_state["live-results"]
    assert {RUN_LABEL, "folder std", "bicubic", "HR"} <= set(live["method"])
    at.radio(key="bm_live_protocol").set_value("official").run()
    assert at.multiselect(key="bm_folders").options == ["folder official (x2)"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gpu", "GVLAB_DEVICE must be one of auto, cpu, cuda; got 'gpu'"),
        pytest.param(
            "cuda",
            "GVLAB_DEVICE=cuda was asked for but no CUDA GPU is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA"),
        ),
    ],
)
def test_bad_device_is_a_clear_error(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("GVLAB_DEVICE", value)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert message in " ".join(str(e.value) for e in at.error)


# --- foreign checkpoints in a folder -------------------------------------------------------------------------
class _Hostile:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("touch hostile-ran",))


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A folder of foreign checkpoints: an ESPCN x2 state dict as .pth and as plain .safetensors, and a hostile file."""
    from safetensors.torch import save_file

    folder = tmp_path / "foreign"
    folder.mkdir()
    torch.manual_seed(1)
    state = gvcore.build_model("espcn", 2).state_dict()
    torch.save(state, folder / "basicsr_espcn.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "plain_espcn.safetensors")
    (folder / "hostile.pth").write_bytes(pickle.dumps(_Hostile()))
    (folder / "notes.txt").write_text("not a checkpoint")
    return folder


def test_foreign_checkpoints_in_a_folder_are_listed(
    foreign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    infos = {i["file"]: i for i in catalog.folder_checkpoint_infos([foreign])}
    assert set(infos) == {"basicsr_espcn.pth", "plain_espcn.safetensors", "hostile.pth"}
    for name in ("basicsr_espcn.pth", "plain_espcn.safetensors"):
        assert (infos[name]["arch"], infos[name]["scale"], infos[name]["label"]) == (
            "espcn",
            2,
            Path(name).stem,
        )
        assert infos[name]["loss_name"] == "unknown (not a gvcore checkpoint)"
    assert "error" in infos["hostile.pth"]
    assert not (tmp_path / "hostile-ran").exists()
    choices = [
        c["choice"]
        for c in catalog.selectable_checkpoints("standard", {"checkpoint folders": list(infos.values())})
    ]
    assert choices == ["basicsr_espcn", "plain_espcn"]


def test_compare_scores_a_foreign_folder_checkpoint(
    folders: dict[str, Path], foreign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GVLAB_CHECKPOINTS", str(foreign))
    at = open_page("compare")
    assert_clean(at)
    assert at.multiselect(key="cmp-folders-standard-2").options == ["basicsr_espcn", "plain_espcn"]
    at.multiselect(key="cmp-runs-standard-2").set_value([RUN_LABEL]).run()
    at.multiselect(key="cmp-folders-standard-2").set_value(["basicsr_espcn"]).run()
    assert_clean(at)
    assert {RUN_LABEL, "basicsr_espcn"} <= set(tables(at)[0].value["method"])
