"""The trainer's hardening: snapshots, divergence, no per-step host sync, clear resume errors.

Snapshots are kept at every checkpoint, divergence keeps the last good checkpoint, logging needs no host sync
per step, and resume-state errors come without torch's ``weights_only=False`` advice.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

import gvcore.training.loop as training_loop
from gvcore.checkpoint.store import load_model
from gvcore.training.run import SimulatedKill, TrainConfig, snapshot_name, train
from tests.image_fixtures import NoiseImages

#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=0, shapes=((32, 32),) * 2)


def _config(images: Path, out: Path, **overrides: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "arch": "espcn",
        "scale": 2,
        "out": str(out),
        "loss": "l1+gv",
        "data": str(images),
        "val_data": "none",
        "steps": 6,
        "batch_size": 2,
        "crop": 16,
        "log_every": 2,
        "val_every": 0,
        "ckpt_every": 2,
        "threads": 1,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig(**options)


def test_snapshot_name() -> None:
    assert snapshot_name(500) == "step_000500.safetensors"


def test_keep_snapshots_writes_a_loadable_checkpoint_per_ckpt_every(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(images, run, keep_snapshots=True))
    names = sorted(p.name for p in (run / "snapshots").iterdir())
    assert names == [snapshot_name(2), snapshot_name(4), snapshot_name(6)]
    _, meta = load_model(run / "snapshots" / snapshot_name(4))
    assert meta["steps"] == 4
    final = load_model(run / "snapshots" / snapshot_name(6))[0].state_dict()
    last = load_model(run / "last.safetensors")[0].state_dict()
    assert all(torch.equal(final[k], last[k]) for k in last)


def test_snapshots_off_by_default(images: Path, tmp_path: Path) -> None:
    train(_config(images, tmp_path / "run", steps=2))
    assert not (tmp_path / "run" / "snapshots").exists()


def test_snapshots_survive_a_kill_and_resume_bit_exact(images: Path, tmp_path: Path) -> None:
    train(_config(images, tmp_path / "straight", keep_snapshots=True))
    killed = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        train(_config(images, killed, keep_snapshots=True, stop_after=3))
    train(_config(images, killed, keep_snapshots=True, resume=True))
    for step in (2, 4, 6):
        a = load_model(tmp_path / "straight" / "snapshots" / snapshot_name(step))[0].state_dict()
        b = load_model(killed / "snapshots" / snapshot_name(step))[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), step


def test_divergence_stops_and_keeps_the_last_good_checkpoint(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = training_loop.train_step

    def poisoned(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss, values = real_step(*args, **kwargs)
        if poisoned.calls >= 3:  # type: ignore[attr-defined]
            loss = loss * float("nan")
        poisoned.calls += 1  # type: ignore[attr-defined]
        return loss, values

    poisoned.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setattr(training_loop, "train_step", poisoned)
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="training diverged at step 4: the loss is not finite"):
        train(_config(images, run, keep_snapshots=True))
    assert load_model(run / "last.safetensors")[1]["steps"] == 2
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [snapshot_name(2)]


def test_steps_do_not_read_values_from_the_device(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging accumulates on the device: a step never turns a tensor into a Python number (a GPU sync)."""
    reads = {"in_step": 0}
    inside = {"flag": False}
    real_step = training_loop._step

    def counting_step(*args: Any, **kwargs: Any) -> None:
        inside["flag"] = True
        try:
            real_step(*args, **kwargs)
        finally:
            inside["flag"] = False

    def counted(name: str) -> Any:
        original = getattr(torch.Tensor, name)

        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if inside["flag"]:
                reads["in_step"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    monkeypatch.setattr(training_loop, "_step", counting_step)
    # SGD (Adam on CPU reads its step counter with .item(), which is no GPU sync); clipping on
    train(_config(images, tmp_path / "run", optimizer="sgd", lr=0.01, grad_clip=0.4, log_every=3))
    assert reads["in_step"] == 0


def test_unreadable_resume_state_never_suggests_weights_only_false(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(images, run, steps=2))

    class Hostile:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    (run / "resume.pt").write_bytes(pickle.dumps({"step": Hostile()}))
    with pytest.raises(ValueError, match="cannot read resume state") as caught:
        train(_config(images, run, steps=4, resume=True))
    assert "weights_only" not in str(caught.value)


def test_cli_keep_snapshots(images: Path, tmp_path: Path) -> None:
    from gvcore.cli import main

    run = tmp_path / "run"
    args = [
        "train",
        "--arch",
        "espcn",
        "--scale",
        "2",
        "--data",
        str(images),
        "--steps",
        "4",
        "--batch-size",
        "2",
    ]
    args += ["--crop", "16", "--out", str(run), "--val-every", "0", "--ckpt-every", "2", "--threads", "1"]
    assert main([*args, "--no-progress", "--keep-snapshots"]) == 0
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [snapshot_name(2), snapshot_name(4)]


def test_cli_divergence_exits_2_with_one_line(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gvcore.cli import main

    real_step = training_loop.train_step

    def nan_step(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss, values = real_step(*args, **kwargs)
        return loss * float("nan"), values

    monkeypatch.setattr(training_loop, "train_step", nan_step)
    args = [
        "train",
        "--arch",
        "espcn",
        "--scale",
        "2",
        "--data",
        str(images),
        "--steps",
        "4",
        "--batch-size",
        "2",
    ]
    args += [
        "--crop",
        "16",
        "--out",
        str(tmp_path / "run"),
        "--val-every",
        "0",
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "training diverged at step 1" in err[0]
