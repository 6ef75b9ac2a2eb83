"""Running the reproduction's grid: the images each run sees, the trainings, fp16 export, scoring.

Each run is one :func:`gvcore.training.run.train` call, in a spawned process when ``jobs`` > 1 (:func:`_train_one`
is top-level for that), resumable when the reproduction is killed; :func:`export_half` re-saves its final weights as the fp16
checkpoints shipped in ``assets/checkpoints/``; :func:`_evaluate_all` scores them through
:func:`gvcore.eval.evaluate.evaluate`.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from gvcore.checkpoint.store import CheckpointMeta, load_model, save_checkpoint
from gvcore.data.bundled import bundled_image_paths
from gvcore.eval.evaluate import evaluate
from gvcore.protocol import Protocol
from gvcore.reproduce.plan import ReproPlan, RunSpec, _cost, plan_value
from gvcore.training.run import TrainConfig, train

__all__ = ["export_half"]


def _train_one(
    spec: RunSpec, plan: ReproPlan, data: tuple[str, str], work: str, threads: int
) -> tuple[str, float, dict[str, float]]:
    """Worker: train one run (a top-level function, so a spawned process can run it)."""
    import torch

    torch.set_num_threads(threads)
    config = TrainConfig(
        arch=spec.arch,
        scale=spec.scale,
        out=str(Path(work) / "runs" / spec.name),
        loss=spec.loss,
        data=data[0],
        val_data=data[1],
        protocol=spec.protocol,
        steps=plan_value(plan.steps, spec.arch, spec.scale),
        lr=plan_value(plan.lr, spec.arch, spec.scale),
        optimizer=plan_value(plan.optimizer, spec.arch, spec.scale, "auto"),
        batch_size=plan.batch_size,
        crop=plan.crop,
        seed=spec.seed,
        resume=True,  # a reproduction killed half-way continues where it stopped
        device="cpu",
        gv_weight=spec.gv_weight if "gv" in spec.loss else None,
        log_every=plan.log_every,
        val_every=plan.val_every,
        ckpt_every=plan.val_every,
        label=spec.label,
        progress=False,
    )
    result = train(config)
    return spec.name, result.elapsed_s, result.metrics


def _run_all(runs: list[tuple[RunSpec, tuple[str, str]]], plan: ReproPlan, work: Path, jobs: int) -> None:
    """Train each ``(spec, (train images, validation images))``, ``jobs`` at a time, longest first."""
    runs = sorted(runs, key=lambda r: -_cost(r[0], plan))  # longest first balances the workers
    costs = [_cost(spec, plan) for spec, _ in runs]
    estimate = max(sum(costs) / max(1, jobs), max(costs))
    print(
        f"      {len(runs)} runs, about {estimate / 60:.0f} min with {jobs} job(s) on a quiet machine",
        flush=True,
    )
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    if jobs <= 1:
        for spec, data in runs:
            _report(*_train_one(spec, plan, data, str(work), threads))
        return
    import multiprocessing

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_one, spec, plan, data, str(work), threads) for spec, data in runs]
        for future in as_completed(futures):
            _report(*future.result())


def _report(name: str, elapsed: float, metrics: dict[str, float]) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"  trained {name} in {elapsed:.0f} s  ({shown})", flush=True)


def _export(work: Path, spec: RunSpec, target: Path) -> Path:
    """Re-save a reproduction run's final weights as fp16 ``target`` and return it."""
    return export_half(work / "runs" / spec.name / "last.safetensors", target, spec.label, spec.protocol)


def export_half(source: Path, target: Path, label: str, degradation: str) -> Path:
    """Re-save a run's checkpoint ``source`` as fp16 ``target`` and return ``target``.

    Metadata is kept and ``label`` set; the checkpoint's own ``degradation`` wins over the given one.
    """
    model, meta = load_model(source)
    options = CheckpointMeta.from_dict(meta).save_options()
    options |= {"label": label, "degradation": options["degradation"] or degradation}
    save_checkpoint(target, model, half=True, **options)
    return target


def _eval_data(plan: ReproPlan, work: Path) -> str:

    return _subset(bundled_image_paths("test"), plan.eval_images, work / "data" / "test", plan.image_crop)


def _subset(paths: list[Path], count: int | None, folder: Path, crop: int | None, force: bool = False) -> str:
    """``"bundled"``, or a folder with the first ``count`` of ``paths`` (centre-cropped to ``crop`` if given).

    ``"bundled"`` (all of the split, uncropped) is returned unless ``count``, ``crop`` or ``force`` ask for a
    folder.
    """
    if count is None and crop is None and not force:
        return "bundled"
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for path in paths[:count]:
        with Image.open(path) as image:
            region = image.copy()
        if crop is not None:
            left, top = max(0, (region.width - crop) // 2), max(0, (region.height - crop) // 2)
            region = region.crop((left, top, left + min(crop, region.width), top + min(crop, region.height)))
        region.save(folder / f"{path.stem}.png")
    return str(folder)


def _evaluate_all(
    checkpoints: dict[int, list[Path]], data: str, protocol: Protocol, progress: bool, noise: bool = False
) -> Any:
    import pandas as pd

    frames = [
        evaluate(paths, data, scale, protocol, progress=progress, noise=noise, lpips=False)
        for scale, paths in checkpoints.items()
    ]
    return pd.concat(frames, ignore_index=True)
