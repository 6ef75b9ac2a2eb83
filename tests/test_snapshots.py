"""Snapshot series: iteration parsing, ``--ckpt DIR``, the iteration column, bad checkpoints, NaN outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from snapshot_fixtures import STEPS, make_snapshot_runs

from gvcore.checkpoint.store import save_checkpoint
from gvcore.cli import main
from gvcore.data.snapshots import expand_checkpoints, series_name, snapshot_iteration
from gvcore.eval.evaluate import evaluate
from gvcore.eval.scoring import NonFiniteOutputError
from gvcore.models import build_model
from tests.image_fixtures import NoiseImages


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_snapshot_runs(tmp_path_factory.mktemp("snap_runs"))


#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=5, shapes=((48, 48),) * 3, folder="snap_images")


class TestNames:
    @pytest.mark.parametrize(
        ("name", "iteration"),
        [
            ("step_000500.safetensors", 500),
            ("net_g_5000.pth", 5000),
            ("net_g_ema_300.pth", 300),
            ("net_g_latest.pth", None),
            ("espcn_x2_l1.safetensors", None),
        ],
    )
    def test_iteration(self, name: str, iteration: int | None) -> None:
        assert snapshot_iteration(name) == iteration

    def test_folder_sorted_by_iteration_unnumbered_last(self, tmp_path: Path) -> None:
        for name in (
            "net_g_latest.pth",
            "net_g_10000.pth",
            "net_g_5000.pth",
            "notes.txt",
            "resume.pt",
            ".x.pth",
        ):
            (tmp_path / name).write_bytes(b"x")
        entries = expand_checkpoints([tmp_path])
        assert [(e.path.name, e.iteration) for e in entries] == [
            ("net_g_5000.pth", 5000),
            ("net_g_10000.pth", 10000),
            ("net_g_latest.pth", None),
        ]

    def test_series_name_of_a_run_snapshots_folder(self, tmp_path: Path) -> None:
        assert series_name(tmp_path / "l1gv" / "snapshots") == "l1gv"

    def test_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="holds no checkpoint"):
            expand_checkpoints([tmp_path])


class TestSeries:
    def test_iteration_column(self, runs: dict[str, Path], images: Path) -> None:
        frame = evaluate(list(runs.values()), images, progress=False)
        models = frame[frame["iteration"].notna()]
        assert sorted(set(models["method"])) == sorted(f"{r}@{s}" for r in runs for s in STEPS)
        assert frame.loc[frame["method"].isin(["HR", "bicubic"]), "iteration"].isna().all()
        assert models.groupby("method")["iteration"].first().to_dict()["l1gv@4"] == 4

    def test_cli_dir_csv(self, runs: dict[str, Path], images: Path, tmp_path: Path) -> None:
        csv = tmp_path / "snap.csv"
        code = main(
            ["eval", "--ckpt", str(runs["l1"]), "--data", str(images), "--csv", str(csv), "--no-progress"]
        )
        assert code == 0
        table = pd.read_csv(csv)
        assert sorted(table["iteration"].dropna().astype(int).unique().tolist()) == list(STEPS)

    def test_bad_checkpoints_reported_good_ones_evaluated(
        self, runs: dict[str, Path], images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        folder = tmp_path / "snaps"
        folder.mkdir()
        for path in runs["l1"].iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
        (folder / "step_000008.safetensors").write_bytes(b"not a checkpoint")
        (folder / "net_g_9.pth").write_bytes(b"")
        csv = tmp_path / "out.csv"
        code = main(
            ["eval", "--ckpt", str(folder), "--data", str(images), "--csv", str(csv), "--no-progress"]
        )
        lines = capsys.readouterr().err.strip().splitlines()
        err = [line for line in lines if not line.startswith("gvcore eval: note: ")]  # the LPIPS note
        assert code == 1
        assert len(err) == 2
        assert all(line.startswith("gvcore eval: error: ") for line in err)
        assert sorted(pd.read_csv(csv)["iteration"].dropna().astype(int).unique().tolist()) == list(STEPS)


def _nan_checkpoint(path: Path) -> Path:
    model = build_model("espcn", 2)
    with torch.no_grad():  # finite weights (a NaN weight is refused at load) whose output overflows to inf
        list(model.parameters())[-2].fill_(3e38)
    return save_checkpoint(path, model, label="broken")


class TestNonFinite:
    def test_single_checkpoint_raises(self, images: Path, tmp_path: Path) -> None:
        bad = _nan_checkpoint(tmp_path / "bad.safetensors")
        with pytest.raises(NonFiniteOutputError, match=r"'broken' produced .* non-finite"):
            evaluate([bad], images, progress=False)

    def test_cli_names_it_and_keeps_the_good_rows(
        self, runs: dict[str, Path], images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = _nan_checkpoint(tmp_path / "bad.safetensors")
        good = runs["l1gv"] / "step_000002.safetensors"
        csv = tmp_path / "out.csv"
        args = ["eval", "--ckpt", str(bad), "--ckpt", str(good), "--data", str(images), "--csv", str(csv)]
        code = main([*args, "--no-progress"])
        err = capsys.readouterr().err
        assert code == 1
        assert "non-finite" in err
        table = pd.read_csv(csv)
        assert "broken" not in set(table["method"])
        assert set(table["method"]) == {"HR", "bicubic", "l1gv"}
        assert table.loc[table["method"] != "HR", ["psnr", "ssim"]].notna().all().all()
