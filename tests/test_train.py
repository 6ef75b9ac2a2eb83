"""Training: loss recipes, recipes/schedules, run directory, bit-exact resume (hook and SIGKILL), DDP on CPU."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gvcore.checkpoint.store import load_model
from gvcore.training.run import (
    LOG_COLUMNS,
    SimulatedKill,
    TrainConfig,
    lr_factor,
    parse_loss,
    resolve_config,
    train,
)
from tests.image_fixtures import NoiseImages

ROOT = Path(__file__).resolve().parents[1]


#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=0, shapes=((40, 48),) * 3)


def _config(images: Path, out: Path, **overrides: object) -> TrainConfig:
    options: dict = dict(
        arch="espcn",
        scale=2,
        out=str(out),
        loss="l1+gv",
        data=str(images),
        val_data=str(images),
        steps=12,
        batch_size=4,
        crop=16,
        log_every=2,
        val_every=6,
        ckpt_every=4,
        val_crop=32,
        threads=1,
        progress=False,
    )
    options.update(overrides)
    return TrainConfig(**options)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "last.safetensors")


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


class TestLossRecipes:
    def test_recipes(self) -> None:
        assert [t.name for t in parse_loss("l1")] == ["l1"]
        terms = parse_loss("l1+gv", gv_weight=0.3, gv_patch_size=4)
        assert [(t.name, t.weight, t.column) for t in terms] == [("l1", 1.0, "pixel"), ("gv", 0.3, "gv")]
        assert parse_loss("mse+gv")[1].weight == 0.01  # the official lambda with MSE
        assert parse_loss("l1+gv")[1].weight == 0.03  # L1: the lambda the bundled sweep supports

    def test_terms_compute_their_losses(self) -> None:
        sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        from gvcore.loss import gradient_variance_loss

        l1, gv = parse_loss("l1+gv", gv_weight=0.5)
        assert torch.allclose(l1.fn(sr, hr), (sr - hr).abs().mean())
        assert torch.allclose(gv.fn(sr, hr), gradient_variance_loss(sr, hr))

    def test_unknown_term_lists_valid_ones(self) -> None:
        with pytest.raises(ValueError, match="loss term must be one of 'l1', 'mse', 'gv'; got 'ssim'"):
            parse_loss("l1+ssim")

    def test_bad_recipes(self) -> None:
        with pytest.raises(ValueError, match="repeats"):
            parse_loss("l1+l1")
        with pytest.raises(ValueError, match="gv_weight"):
            parse_loss("l1+gv", gv_weight=-1.0)


class TestConfig:
    def test_vdsr_gets_the_official_sgd_recipe(self) -> None:
        c = resolve_config(TrainConfig(arch="vdsr-lite", scale=2, out="x"))
        assert (c.optimizer, c.lr, c.momentum, c.weight_decay, c.grad_clip, c.schedule) == (
            "sgd",
            0.1,
            0.9,
            1e-4,
            0.4,
            "multistep",
        )

    def test_adam_for_edsr_and_espcn(self) -> None:
        for arch in ("edsr-lite", "espcn"):
            c = resolve_config(TrainConfig(arch=arch, scale=2, out="x", loss="l1+gv"))
            assert (c.optimizer, c.schedule, c.grad_clip, c.gv_weight) == ("adam", "cosine", 0.0, 0.03)

    def test_bad_options(self) -> None:
        with pytest.raises(ValueError, match="arch must be one of 'vdsr', 'vdsr-lite'"):
            resolve_config(TrainConfig(arch="srcnn", scale=2, out="x"))
        with pytest.raises(ValueError, match="crop must be a multiple of scale 4"):
            resolve_config(TrainConfig(arch="espcn", scale=4, out="x", crop=30))

    def test_lr_schedules(self) -> None:
        assert [lr_factor(s, 30, "multistep", (1 / 3, 2 / 3), 0.1) for s in (9, 10, 19, 20)] == pytest.approx(
            [1.0, 0.1, 0.1, 0.01]
        )
        assert lr_factor(0, 10, "cosine", (), 0.1) == 1.0
        assert lr_factor(5, 10, "cosine", (), 0.1) == pytest.approx(0.5)
        assert lr_factor(7, 10, "constant", (), 0.1) == 1.0


class TestRun:
    def test_run_directory(self, images: Path, tmp_path: Path) -> None:
        result = train(_config(images, tmp_path / "run"))
        run = tmp_path / "run"
        assert result.steps == 12
        assert set(result.metrics) == {"psnr", "ssim", "gv", "var_ratio"}
        config = json.loads((run / "config.json").read_text())
        assert config["optimizer"] == "adam"
        assert config["gv_weight"] == 0.03
        rows = _log_rows(run)
        assert tuple(rows[0]) == LOG_COLUMNS
        assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10, 12]
        assert [bool(r["val_psnr"]) for r in rows] == [False, False, True, False, False, True]
        assert all(float(r["loss_gv"]) > 0 and float(r["loss_pixel"]) > 0 for r in rows)
        _model, meta = load_model(run / "last.safetensors")
        assert meta["arch"] == "espcn"
        assert meta["steps"] == 12
        assert meta["loss"]["gv_weight"] == 0.03
        assert meta["metrics"]["psnr"] == pytest.approx(result.metrics["psnr"])
        state = torch.load(run / "resume.pt", weights_only=True)  # plain containers and tensors only
        assert state["step"] == 12
        assert torch.get_num_threads() >= 1

    def test_l1_only_has_empty_gv_column(self, images: Path, tmp_path: Path) -> None:
        train(_config(images, tmp_path / "run", loss="l1", steps=2, val_every=0))
        assert [r["loss_gv"] for r in _log_rows(tmp_path / "run")] == [""]

    def test_existing_run_needs_resume(self, images: Path, tmp_path: Path) -> None:
        train(_config(images, tmp_path / "run", steps=2))
        with pytest.raises(ValueError, match="already holds a run; pass --resume"):
            train(_config(images, tmp_path / "run", steps=2))

    def test_resume_with_another_config_is_refused(self, images: Path, tmp_path: Path) -> None:
        train(_config(images, tmp_path / "run", steps=4))
        with pytest.raises(ValueError, match=r"different config.*seed"):
            train(_config(images, tmp_path / "run", steps=8, seed=1, resume=True))

    def test_resume_after_stop_is_bit_exact(self, images: Path, tmp_path: Path) -> None:
        train(_config(images, tmp_path / "a"))
        with pytest.raises(SimulatedKill):
            train(_config(images, tmp_path / "b", stop_after=7))  # last resume state: step 4
        assert [int(r["step"]) for r in _log_rows(tmp_path / "b")] == [2, 4, 6]
        train(_config(images, tmp_path / "b", resume=True))
        assert _same_weights(tmp_path / "a", tmp_path / "b")
        strip = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in _log_rows(tmp_path / "a")]
        assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in _log_rows(tmp_path / "b")] == strip

    def test_resume_extends_a_finished_run(self, images: Path, tmp_path: Path) -> None:
        train(_config(images, tmp_path / "run", steps=4, schedule="constant"))
        train(_config(images, tmp_path / "run", steps=6, schedule="constant", resume=True))
        assert [int(r["step"]) for r in _log_rows(tmp_path / "run")] == [2, 4, 6]

    def test_resume_after_sigkill_is_bit_exact(self, images: Path, tmp_path: Path) -> None:
        steps = 40
        args = [
            sys.executable, "-m", "gvcore", "train", "--arch", "espcn", "--scale", "2", "--loss", "l1+gv",
            "--data", str(images), "--val-data", str(images), "--steps", str(steps), "--batch-size", "4",
            "--crop", "16", "--log-every", "1", "--val-every", "0", "--ckpt-every", "3", "--threads", "1",
            "--no-progress", "--out",
        ]  # fmt: skip
        victim = tmp_path / "killed"
        proc = subprocess.Popen([*args, str(victim)], cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            log = victim / "log.csv"
            # a few steps past the first checkpoint (step 3), before the end
            if (victim / "resume.pt").exists() and log.exists() and len(log.read_text().splitlines()) >= 6:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        done = subprocess.run([*args, str(victim), "--resume"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        train(_config(images, tmp_path / "straight", steps=steps, log_every=1, val_every=0, ckpt_every=3))
        assert _same_weights(victim, tmp_path / "straight")
        assert [int(r["step"]) for r in _log_rows(victim)] == list(range(1, steps + 1))


@pytest.mark.slow
def test_ddp_two_processes_match_one(images: Path, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2`` (gloo on CPU) splits each global batch and matches a single process."""
    args = [
        "--arch", "espcn", "--scale", "2", "--loss", "l1+gv", "--data", str(images), "--val-data", str(images),
        "--steps", "6", "--batch-size", "4", "--crop", "16", "--log-every", "2", "--val-every", "6",
        "--ckpt-every", "3", "--val-crop", "32", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "gvcore",
    ]
    done = subprocess.run(
        [*cmd, "train", *args, "--out", str(tmp_path / "ddp")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    assert [int(r["step"]) for r in _log_rows(tmp_path / "ddp")] == [2, 4, 6]  # rank 0 alone writes
    train(_config(images, tmp_path / "one", steps=6, ckpt_every=3))
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_disk_full_keeps_the_previous_checkpoint(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed write (e.g. ENOSPC) of the resume state leaves the previous one intact and no temp files."""
    import errno

    import gvcore.training.loop as train_module

    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            real_save(obj, f, *args, **kwargs)  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(train_module.torch, "save", failing_save)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        train(_config(images, run, steps=8, ckpt_every=2, val_every=0))
    assert torch.load(run / "resume.pt", weights_only=True)["step"] == 2
    assert load_model(run / "last.safetensors")[1]["steps"] in (2, 4)
    assert sorted(p.name for p in run.iterdir() if p.name != ".lock") == [
        "config.json",
        "last.safetensors",
        "log.csv",
        "resume.pt",
    ]
    monkeypatch.setattr(train_module.torch, "save", real_save)
    train(_config(images, run, steps=8, ckpt_every=2, val_every=0, resume=True))
    train(_config(images, tmp_path / "straight", steps=8, ckpt_every=2, val_every=0))
    assert _same_weights(run, tmp_path / "straight")
