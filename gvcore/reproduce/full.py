"""The full-size tier of the reproduction: EDSR-baseline and VDSR, L1 vs L1+GV at x2 and x4, trained on a GPU.

``gvcore reproduce --tier full --device cuda`` trains, on the bundled train split (standard degradation, seed 0),

- ``edsr`` (EDSR-baseline: 16 blocks, 64 features) and ``vdsr`` (20 layers, 64 features), each with L1 and
  L1+GV (lambda = :data:`gvcore.training.config.DEFAULT_GV_WEIGHT` ``["l1"]``), at x2 and x4;
- up to ``--jobs`` runs at once on the one GPU (small models leave it mostly idle, so runs share it well);
- the number of steps is fixed by a time budget measured on the machine: each configuration is timed for a
  few steps first, then every run gets ``min(max_steps, budget_s / seconds_per_step)`` steps, rounded down to a
  multiple of 100. The steps used are written into every checkpoint and into ``full_meta.json``, so a rerun
  with ``--steps`` reproduces the same schedule.

It writes fp16 checkpoints to ``<out>/checkpoints/full/``. Scoring is separate (:func:`evaluate_full`, run on
any machine, CPU included): ``<out>/results/eval_full.csv``, ``paired_full.csv`` and ``summary_full.md``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvcore import __version__
from gvcore.eval.evaluate import evaluate, write_csv
from gvcore.eval.stats import paired_table
from gvcore.reproduce.runs import export_half
from gvcore.reproduce.summary import write_tier_summary
from gvcore.training.config import DEFAULT_GV_WEIGHT
from gvcore.training.run import TrainConfig, train

__all__ = ["FULL_PLAN", "FullPlan", "evaluate_full", "train_full"]


@dataclass(frozen=True)
class FullPlan:
    """Presets, scales, recipe and time budget of the full tier."""

    presets: tuple[str, ...] = ("edsr", "vdsr")
    scales: tuple[int, ...] = (2, 4)
    losses: tuple[str, ...] = ("l1", "l1+gv")
    seed: int = 0
    batch_size: int = 16
    crop: int = 96
    #: Adam + cosine for both (VDSR's official SGD 0.1 needs far more steps than a GPU budget of minutes).
    lr: tuple[tuple[str, float], ...] = (("edsr", 5e-4), ("vdsr", 2e-4))
    max_steps: int = 20_000
    #: seconds of training per run (the runs share the GPU ``jobs`` at a time).
    budget_s: float = 150.0
    probe_steps: int = 30


FULL_PLAN = FullPlan()


def _run_name(arch: str, scale: int, loss: str, seed: int) -> str:
    return f"{arch}-x{scale}-{loss.replace('+', '-')}-s{seed}"


def _config(
    plan: FullPlan,
    arch: str,
    scale: int,
    loss: str,
    steps: int,
    work: Path,
    device: str,
    data: str = "bundled",
) -> Any:

    return TrainConfig(
        arch=arch,
        scale=scale,
        out=str(work / _run_name(arch, scale, loss, plan.seed)),
        loss=loss,
        data=data,
        steps=steps,
        lr=dict(plan.lr)[arch],
        optimizer="adam",
        schedule="cosine",
        batch_size=plan.batch_size,
        crop=plan.crop,
        seed=plan.seed,
        resume=True,
        device=device,  # type: ignore[arg-type]
        log_every=50,
        val_every=0,
        ckpt_every=max(100, steps // 4),
        label=f"{arch}-x{scale}-{loss}-s{plan.seed}",
        progress=False,
    )


def _train_worker(
    plan: FullPlan, arch: str, scale: int, loss: str, steps: int, work: str, device: str, data: str
) -> str:

    result = train(_config(plan, arch, scale, loss, steps, Path(work), device, data))
    return f"{arch} x{scale} {loss}: {steps} steps in {result.elapsed_s:.0f} s"


def _seconds_per_step(plan: FullPlan, arch: str, scale: int, work: Path, device: str, data: str) -> float:
    """Time ``probe_steps`` L1+GV steps (after as many warm-up steps) of one configuration."""
    import shutil

    probe = work / "probe"
    shutil.rmtree(probe, ignore_errors=True)
    config = dataclasses.replace(
        _config(plan, arch, scale, "l1+gv", plan.probe_steps, probe, device, data), resume=False
    )
    train(dataclasses.replace(config, out=str(probe / "warm")))
    t0 = time.perf_counter()
    result = train(dataclasses.replace(config, out=str(probe / "timed")))
    shutil.rmtree(probe, ignore_errors=True)
    return max(result.elapsed_s, time.perf_counter() - t0) / plan.probe_steps


def train_full(
    out: str | Path = "assets",
    work: str | Path = "runs/full",
    device: str = "cuda",
    jobs: int = 4,
    steps: dict[str, int] | None = None,
    plan: FullPlan = FULL_PLAN,
    data: str = "bundled",
) -> dict[str, Any]:
    """Train the full tier and export its fp16 checkpoints (module docstring); returns ``full_meta.json``'s dict.

    Args:
        out: assets folder (``checkpoints/full/`` and ``results/full_meta.json`` are written inside).
        work: run directories (a killed run resumes).
        device: ``"cuda"`` (or ``"cpu"`` for tests with tiny budgets).
        jobs: runs at once.
        steps: ``arch-x{scale}`` -> steps, to reuse a schedule; default: measured from ``plan.budget_s``.
        plan: the tier's settings.
        data: training images (default the bundled train split; a folder holding a copy of it on a machine
            whose scikit-image ships other sample files).
    """
    import multiprocessing

    out_dir, work_dir = Path(out), Path(work)
    target = out_dir / "checkpoints" / "full"
    target.mkdir(parents=True, exist_ok=True)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    chosen: dict[str, int] = dict(steps or {})
    timing: dict[str, float] = {}
    for arch in plan.presets:
        for scale in plan.scales:
            key = f"{arch}-x{scale}"
            if key not in chosen:
                timing[key] = _seconds_per_step(plan, arch, scale, work_dir, device, data)
                # the runs share the GPU `jobs` at a time: assume they slow each other down by half
                fit = plan.budget_s / (timing[key] * 1.5)
                chosen[key] = max(100, min(plan.max_steps, int(fit) // 100 * 100))
                print(f"  {key}: {timing[key] * 1000:.1f} ms/step alone -> {chosen[key]} steps", flush=True)
    runs = [(a, s, loss) for a in plan.presets for s in plan.scales for loss in plan.losses]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [
            pool.submit(_train_worker, plan, a, s, loss, chosen[f"{a}-x{s}"], str(work_dir), device, data)
            for a, s, loss in runs
        ]
        for future in as_completed(futures):
            print("  trained " + future.result(), flush=True)
    files = {}
    for arch, scale, loss in runs:
        name = _run_name(arch, scale, loss, plan.seed)
        path = export_half(
            work_dir / name / "last.safetensors",
            target / f"{name}.safetensors",
            f"{arch}-x{scale}-{loss}-s{plan.seed} full",
            "standard",
        )
        files[name] = str(path.relative_to(out_dir))
    import torch

    meta_out = {
        "command": f"gvcore reproduce --tier full --device {device} --jobs {jobs}",
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else device,
        "plan": dataclasses.asdict(plan),
        "steps": chosen,
        "seconds_per_step_alone": timing,
        "lambda": DEFAULT_GV_WEIGHT["l1"],
        "data": data,
        "checkpoints": files,
        "gvcore_version": __version__,
        "torch_version": torch.__version__,
    }
    (out_dir / "results" / "full_meta.json").write_text(json.dumps(meta_out, indent=2) + "\n")
    return meta_out


def evaluate_full(
    out: str | Path = "assets", progress: bool = True, device: str = "cpu", data: str = "bundled"
) -> Any:
    """Score the full tier on ``data``: eval, paired statistics, summary.

    ``data`` defaults to the bundled test split; the protocol is standard.
    """
    import pandas as pd

    out_dir = Path(out)
    meta_path = out_dir / "results" / "full_meta.json"
    if not meta_path.is_file():
        raise ValueError(
            f"no full tier in {out_dir}: {meta_path} is missing (run `gvcore reproduce --tier full`)"
        )
    meta = json.loads(meta_path.read_text())
    by_scale: dict[int, list[Path]] = {}
    for rel in meta["checkpoints"].values():
        scale = int(str(rel).split("-x")[1].split("-")[0])
        by_scale.setdefault(scale, []).append(out_dir / rel)
    frames = [
        evaluate(paths, data, scale, "standard", progress=progress, device=device)
        for scale, paths in sorted(by_scale.items())
    ]
    table = pd.concat(frames, ignore_index=True)
    write_csv(table, out_dir / "results" / "eval_full.csv")
    paired = paired_table(table)
    write_csv(paired, out_dir / "results" / "paired_full.csv")
    write_tier_summary(out_dir / "results" / "summary_full.md", table, paired, meta)
    return table
