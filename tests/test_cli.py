"""The ``gvcore`` command line: happy paths and bad input (exit 2, one line, nothing left behind)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gvcore.cli import main
from tests.image_fixtures import NoiseImages

ROOT = Path(__file__).resolve().parents[1]


#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=2, shapes=((36, 40),) * 2, folder="cli_images")


def _train_args(data: Path | str, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--arch", "espcn", "--scale", "2", "--loss", "l1+gv", "--data", str(data), "--steps", "2",
        "--batch-size", "2", "--crop", "16", "--out", str(out), "--seed", "0", "--val-every", "0",
        "--threads", "1", "--no-progress", *extra,
    ]  # fmt: skip


def _error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def test_train_then_eval(images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    train = _train_args(images, run, "--gv-weight", "0.3", "--gv-patch-size", "4", "--protocol", "official")
    assert main(train) == 0
    files = {p.name for p in run.iterdir() if p.name != ".lock"}  # .lock: the run-directory lock
    assert files == {"config.json", "log.csv", "last.safetensors", "resume.pt"}
    capsys.readouterr()
    csv_path = tmp_path / "eval.csv"
    args = ["eval", "--ckpt", str(run / "last.safetensors"), "--data", str(images), "--scale", "2"]
    assert main([*args, "--protocol", "official", "--csv", str(csv_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| method | images | psnr")
    assert "espcn-x2-l1+gv-s0" in out
    frame = pd.read_csv(csv_path)
    assert set(frame["protocol"]) == {"official"}
    assert set(frame["gv_weight"].dropna()) == {0.3}


class TestTrainErrors:
    def test_missing_folder(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        line = _error(capsys, _train_args(tmp_path / "nope", tmp_path / "run"))
        assert line.startswith("gvcore train: error: data folder")
        assert "does not exist" in line
        assert not (tmp_path / "run").exists()

    def test_empty_folder(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "empty").mkdir()
        assert "is empty" in _error(capsys, _train_args(tmp_path / "empty", tmp_path / "run"))
        assert not (tmp_path / "run").exists()

    def test_no_images(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "readme.txt").write_text("hi")
        assert "no images" in _error(capsys, _train_args(tmp_path / "docs", tmp_path / "run"))
        assert not (tmp_path / "run").exists()

    def test_images_smaller_than_crop(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = _train_args(images, tmp_path / "run")
        args[args.index("--crop") + 1] = "64"
        line = _error(capsys, args)
        assert "im0.png is 36x40" in line
        assert "smaller than the crop 64x64" in line
        assert not (tmp_path / "run").exists()

    def test_unknown_arch_and_loss(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = _train_args(images, tmp_path / "run")
        args[args.index("--arch") + 1] = "srgan"
        assert "arch must be one of 'vdsr', 'vdsr-lite', 'edsr', 'edsr-lite', 'espcn'" in _error(capsys, args)
        args = _train_args(images, tmp_path / "run")
        args[args.index("--loss") + 1] = "l1+lpips"
        assert "loss term must be one of 'l1', 'mse', 'gv'; got 'lpips'" in _error(capsys, args)
        assert not (tmp_path / "run").exists()

    def test_unwritable_out(self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("a file, not a folder")
        assert "is not writable" in _error(capsys, _train_args(images, blocker / "run"))
        assert blocker.read_text() == "a file, not a folder"

    def test_existing_run(self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(_train_args(images, tmp_path / "run")) == 0
        capsys.readouterr()
        assert "pass --resume" in _error(capsys, _train_args(images, tmp_path / "run"))


class TestEvalErrors:
    def test_scale_mismatch(self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(_train_args(images, tmp_path / "run")) == 0
        capsys.readouterr()
        ckpt = str(tmp_path / "run" / "last.safetensors")
        csv_path = tmp_path / "eval.csv"
        line = _error(
            capsys, ["eval", "--ckpt", ckpt, "--data", str(images), "--scale", "4", "--csv", str(csv_path)]
        )
        assert line.startswith("gvcore eval: error:")
        assert "scale" in line
        assert not csv_path.exists()

    def test_missing_checkpoint(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        line = _error(capsys, ["eval", "--ckpt", str(tmp_path / "none.safetensors"), "--data", str(images)])
        assert "not found" in line

    def test_unwritable_csv(self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        line = _error(
            capsys, ["eval", "--data", str(images), "--scale", "2", "--csv", str(tmp_path / "no" / "x.csv")]
        )
        assert "does not exist" in line


class TestEvalOwnData:
    def test_lr_needs_hr(self, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
        line = _error(capsys, ["eval", "--lr", str(images), "--scale", "2"])
        assert "--lr needs --hr" in line

    def test_data_and_hr_conflict(self, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
        line = _error(capsys, ["eval", "--data", str(images), "--hr", str(images), "--scale", "2"])
        assert "either --data or --hr" in line

    def test_cache_with_lr_only(self, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
        line = _error(capsys, ["eval", "--data", str(images), "--lr-only", "--cache", "--scale", "2"])
        assert "--lr-only" in line

    def test_cache_without_a_file_uses_gvlab_results_db(
        self, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db = tmp_path / "shared" / "lab.sqlite"
        monkeypatch.setenv("GVLAB_RESULTS_DB", str(db))
        monkeypatch.chdir(tmp_path)
        args = ["eval", "--data", str(images), "--scale", "2", "--cache", "--no-progress"]
        assert main(args) == 0
        assert db.is_file()
        assert not (tmp_path / "runs").exists()

    def test_wrong_lr_size_names_the_file(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        lr = tmp_path / "lr"
        lr.mkdir()
        for name in ("im0", "im1"):
            Image.fromarray(np.zeros((18, 21, 3), np.uint8)).save(lr / f"{name}x2.png")
        csv_path = tmp_path / "eval.csv"
        args = ["eval", "--hr", str(images), "--lr", str(lr), "--scale", "2", "--csv", str(csv_path)]
        line = _error(capsys, [*args, "--no-progress"])
        assert "im0x2.png is 18x21; expected 18x20" in line
        assert not csv_path.exists()

    def test_given_lr_files(self, images: Path, tmp_path: Path) -> None:
        lr = tmp_path / "lr"
        lr.mkdir()
        for name in ("im0", "im1"):
            Image.fromarray(np.zeros((18, 20, 3), np.uint8)).save(lr / f"{name}x2.png")
        csv_path = tmp_path / "eval.csv"
        args = ["eval", "--hr", str(images), "--lr", str(lr), "--scale", "2", "--csv", str(csv_path)]
        assert main([*args, "--no-progress"]) == 0
        table = pd.read_csv(csv_path)
        assert table.loc[table["method"] == "bicubic", "lr_source"].tolist() == ["file", "file"]


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gvcore", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert all(cmd in done.stdout for cmd in ("train", "eval", "reproduce"))
    bad = subprocess.run([sys.executable, "-m", "gvcore", "train"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "--arch" in bad.stderr


class TestMisuse:
    """CLI misuse gets a one-line error (exit 2) and never loses a run."""

    @pytest.mark.parametrize(
        ("extra", "match"),
        [
            (["--grad-clip", "-1"], "grad_clip"),
            (["--lr", "inf"], "lr must be a finite number"),
            (["--threads", "-3"], "threads"),
            (["--gv-weight", "nan"], "gv_weight"),
        ],
    )
    def test_bad_numbers(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
    ) -> None:
        line = _error(capsys, _train_args(images, tmp_path / "run", *extra))
        assert match in line
        assert not (tmp_path / "run" / "last.safetensors").exists()

    def test_resume_without_resume_state_keeps_the_weights(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run = tmp_path / "run"
        assert main(_train_args(images, run)) == 0
        (run / "resume.pt").unlink()
        before = (run / "last.safetensors").read_bytes()
        capsys.readouterr()
        line = _error(capsys, [*_train_args(images, run), "--resume"])
        assert "nothing to resume" in line
        assert (run / "last.safetensors").read_bytes() == before

    def test_a_second_run_into_a_locked_out_is_refused(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from gvcore.training.runstate import run_lock

        run = tmp_path / "run"
        held = run_lock(run)  # as if another `gvcore train` were running there
        try:
            line = _error(capsys, _train_args(images, run))
            assert "in use by another training process" in line
        finally:
            held.close()
        assert main(_train_args(images, run)) == 0  # free again

    def test_eval_csv_into_a_folder_fails_before_evaluating(
        self, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        line = _error(capsys, ["eval", "--data", str(images), "--scale", "2", "--csv", str(tmp_path)])
        assert "it is a folder" in line


def test_dashboard_options_point_it_at_your_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gvcore dashboard --ckpt --data --runs`` (repeatable) add to the GVLAB_* variables, which keep working."""
    import dashboard.__main__ as launcher

    folders = {name: tmp_path / name for name in ("ckpts", "more", "data", "runs", "env-runs")}
    for folder in folders.values():
        folder.mkdir()
    served: dict[str, str] = {}
    monkeypatch.setattr(launcher, "serve", lambda **kw: served.update(os.environ) or 0)
    monkeypatch.setenv("GVLAB_RUNS", str(folders["env-runs"]))
    for name in ("GVLAB_CHECKPOINTS", "GVLAB_DATA_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    argv = ["dashboard", "--ckpt", str(folders["ckpts"]), "--ckpt", str(folders["more"])]
    argv += ["--data", str(folders["data"]), "--runs", str(folders["runs"])]
    assert main(argv) == 0
    assert served["GVLAB_CHECKPOINTS"].split(os.pathsep) == [str(folders["ckpts"]), str(folders["more"])]
    assert served["GVLAB_DATA_ROOTS"] == str(folders["data"])
    assert served["GVLAB_RUNS"].split(os.pathsep) == [str(folders["env-runs"]), str(folders["runs"])]


def test_dashboard_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    assert "gvcore dashboard --ckpt" in out
    assert "--runs" in out
    assert "GVLAB_CHECKPOINTS" in out


def test_dashboard_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--runs", str(tmp_path / "absent")]) == 2
    assert "--runs" in capsys.readouterr().err
