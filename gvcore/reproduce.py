"""The bundled reproduction: ``gvcore reproduce`` trains the paper's grid on the bundled data and writes ``assets/``.

What it runs (:data:`PLAN`), all on the bundled train split:

1. **L1 runs and the lambda sweeps** -- {vdsr-lite, edsr-lite, espcn} x {x2, x4} with L1 under ``seeds``
   on the standard degradation (MATLAB bicubic LR), the same with ``official_seeds`` on the official
   degradation (PIL bilinear LR; these models feed the official-protocol table, so no table mixes
   degradations), and the sweep preset at every scale, at lambda = 0 and every ``sweep_lambdas`` value under
   ``sweep_seeds``, trained on the train split minus ``sweep_holdout`` (so the sweep never sees the test split).
2. **lambda** -- the sweeps are scored on the held-out train images (standard protocol) into
   ``lambda_sweep.csv``; the shipped lambda is the one restoring the most gradient variance (highest
   ``var_ratio``) among those whose PSNR stays within ``psnr_tolerance`` dB of L1 alone at every sweep scale
   (:func:`choose_lambda`).
3. **L1+GV runs** with that lambda, same seeds and degradations as the L1 runs.
4. **Evaluation** of the fp16 checkpoints shipped in ``assets/checkpoints/`` on the bundled test split: the
   standard-degradation models under the standard protocol (``eval_standard.csv``), the official-degradation
   models (``checkpoints/official/``) under the official protocol (``eval_official.csv``); paired statistics
   of L1+GV - L1 (``paired.csv``, :func:`gvcore.stats.paired_table`); ``summary.md``; ``reproduce_meta.json``
   (wall time, plan, lambda, versions, checkpoint files); training logs in ``results/logs/``.

Recipe departures from the paper, all for a 2-core CPU budget: lite models, L1 instead of MSE, crops of 64,
and Adam (lr 1e-3, cosine) for VDSR-lite instead of the official SGD 0.1 -- with a few hundred steps SGD left
VDSR-lite barely above bicubic (+0.24 dB at x2 in the first reproduction).

``--smoke`` runs the same pipeline with a few steps on a few images into a temporary folder (CI).
``verify`` re-evaluates the shipped checkpoints and compares with the shipped tables. Validation during training
(``log.csv``'s ``val_*``) uses centre crops of the test images for monitoring only: the last weights are shipped,
nothing is selected on the test split.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvcore.data import Protocol

__all__ = ["PLAN", "SMOKE_PLAN", "ReproPlan", "VerifyReport", "choose_lambda", "reproduce", "verify"]


@dataclass(frozen=True)
class ReproPlan:
    """The reproduction grid and its budget (see the module docstring)."""

    presets: tuple[str, ...] = ("vdsr-lite", "edsr-lite", "espcn")
    scales: tuple[int, ...] = (2, 4)
    #: optimizer steps per preset or ``preset-x{scale}`` (ESPCN is ~10x cheaper per step and learns slowest;
    #: x4 needs more steps than x2 to leave bicubic by the same margin).
    steps: tuple[tuple[str, int], ...] = (
        ("vdsr-lite-x2", 600),
        ("vdsr-lite-x4", 1000),
        ("edsr-lite-x2", 800),
        ("edsr-lite-x4", 1600),
        ("espcn-x2", 2000),
        ("espcn-x4", 6000),
    )
    #: learning-rate overrides per preset (others: the recipe default of gvcore.training).
    lr: tuple[tuple[str, float], ...] = (
        ("vdsr-lite", 1e-3),
        ("edsr-lite", 1e-3),
        ("espcn-x2", 2e-3),
        ("espcn-x4", 3e-3),
    )
    #: optimizer overrides per preset (module docstring: Adam for VDSR-lite).
    optimizer: tuple[tuple[str, str], ...] = (("vdsr-lite", "adam"),)
    batch_size: int = 16
    crop: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)
    official_seeds: tuple[int, ...] = (0,)
    #: presets also trained on the official degradation: the official code's own model (VDSR) and ESPCN (the
    #: cheapest); EDSR-lite is left out for the 2-core budget.
    official_presets: tuple[str, ...] = ("vdsr-lite", "espcn")
    sweep_preset: str = "espcn"
    sweep_scales: tuple[int, ...] = (2, 4)
    sweep_seeds: tuple[int, ...] = (0,)
    sweep_lambdas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    #: bundled train images held out of the sweep's training and used to score it (structure-rich).
    sweep_holdout: tuple[str, ...] = ("coffee.png", "brick.png", "astronaut.png", "rocket.jpg")
    psnr_tolerance: float = 0.05
    log_every: int = 10
    val_every: int = 250
    train_images: int | None = None  # None = the whole bundled train split
    eval_images: int | None = None  # None = the whole bundled test split
    image_crop: int | None = None  # centre-crop the images used (smoke only)
    bootstrap_resamples: int = 10_000


#: the shipped reproduction (measured budget: see bench/README.md and the report in reproduce_meta.json).
PLAN = ReproPlan()
#: CI's few-step version of the same pipeline.
SMOKE_PLAN = ReproPlan(
    steps=(("vdsr-lite", 2), ("edsr-lite", 2), ("espcn", 3)),
    official_presets=("vdsr-lite", "edsr-lite", "espcn"),
    batch_size=2,
    crop=32,
    seeds=(0, 1),
    sweep_seeds=(0,),
    sweep_lambdas=(0.1, 1.0),
    sweep_holdout=("coffee.png", "brick.png"),
    log_every=1,
    val_every=2,
    train_images=2,
    eval_images=2,
    image_crop=96,
    bootstrap_resamples=1000,
)

#: The paper's change from its base model to base+GV on DIV2K val (official protocol), (dPSNR dB, dSSIM), by
#: preset and scale. The paper's VDSR is trained with MSE (the official code); the loss of its EDSR and ESPCN
#: baselines is not released.
PAPER_DELTAS: dict[tuple[str, int], tuple[float, float]] = {
    ("vdsr", 2): (0.69, 0.0159),
    ("vdsr", 4): (0.35, 0.0138),
    ("edsr", 2): (0.76, 0.0054),
    ("edsr", 4): (-0.05, 0.0097),
    ("espcn", 2): (0.12, 0.0027),
    ("espcn", 4): (0.08, 0.0025),
}


@dataclass(frozen=True)
class RunSpec:
    arch: str
    scale: int
    loss: str
    seed: int
    gv_weight: float = 0.0
    sweep: bool = False
    protocol: Protocol = "standard"

    @property
    def name(self) -> str:
        """File-friendly run name, e.g. ``espcn-x2-l1-gv-s0`` (``-w0.03`` for sweep points, ``-official``)."""
        weight = f"-w{self.gv_weight:g}" if self.sweep else ""
        degradation = "-official" if self.protocol == "official" else ""
        return f"{self.arch}-x{self.scale}-{self.loss.replace('+', '-')}{weight}{degradation}-s{self.seed}"

    @property
    def label(self) -> str:
        weight = f" λ={self.gv_weight:g}" if self.sweep else ""
        degradation = " official" if self.protocol == "official" else ""
        return f"{self.arch}-x{self.scale}-{self.loss}{weight}{degradation}-s{self.seed}"

    @property
    def folder(self) -> str:
        """Sub-folder of ``checkpoints/`` the run ships in."""
        return "sweep" if self.sweep else ("official" if self.protocol == "official" else "")


#: seconds per L1 training step, 1 thread, batch 16, crop 64 (bench/bench_train_step.py on this 2-core box);
#: GV adds <= 10 % (same bench). Used to schedule the longest runs first and to print an estimate.
SECONDS_PER_STEP: dict[tuple[str, int], float] = {
    ("vdsr-lite", 2): 0.31,
    ("vdsr-lite", 4): 0.31,
    ("edsr-lite", 2): 0.19,
    ("edsr-lite", 4): 0.13,
    ("espcn", 2): 0.044,
    ("espcn", 4): 0.015,
}


def _cost(spec: RunSpec, plan: ReproPlan) -> float:
    """Estimated training seconds of one run (1 thread, batch 16, crop 64 scaled by the plan's)."""
    per_step = SECONDS_PER_STEP.get((spec.arch, spec.scale), 0.3) * (1.1 if "gv" in spec.loss else 1.0)
    return (
        per_step
        * plan_value(plan.steps, spec.arch, spec.scale)
        * plan.batch_size
        / 16
        * (plan.crop / 64) ** 2
    )


def plan_value(table: tuple[tuple[str, Any], ...], arch: str, scale: int, default: Any = None) -> Any:
    """A per-preset plan setting: the ``arch-x{scale}`` entry, else the ``arch`` entry, else ``default``."""
    entries = dict(table)
    return entries.get(f"{arch}-x{scale}", entries.get(arch, default))


def _train_one(
    spec: RunSpec, plan: ReproPlan, data: tuple[str, str], work: str, threads: int
) -> tuple[str, float, dict[str, float]]:
    """Worker: train one run (a top-level function, so a spawned process can run it)."""
    import torch

    from gvcore.training import TrainConfig, train

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


def choose_lambda(sweep: Any, tolerance: float) -> tuple[float, str]:
    """The lambda the sweep supports, and why (a sentence for summary.md).

    Among ``lambda > 0`` whose mean PSNR is within ``tolerance`` dB of ``lambda = 0`` (L1 alone) at every scale
    of the sweep, the one with the highest SR/HR gradient-variance ratio (mean over scales); if none stays within
    the tolerance, the one with the smallest worst-scale PSNR loss.
    """
    frame = sweep.copy()
    if "scale" not in frame:
        frame["scale"] = 0
    per_scale = frame.groupby(["scale", "lambda"], sort=True)[["psnr", "var_ratio"]].mean().reset_index()
    base = per_scale[per_scale["lambda"] == 0].set_index("scale")["psnr"]
    per_scale["psnr_loss"] = per_scale["scale"].map(base) - per_scale["psnr"]
    positive = per_scale[per_scale["lambda"] > 0]
    agg = (
        positive.groupby("lambda").agg(worst=("psnr_loss", "max"), ratio=("var_ratio", "mean")).reset_index()
    )
    within = agg[agg["worst"] <= tolerance]
    if len(within):
        row = within.loc[within["ratio"].idxmax()]
        why = (
            f"highest SR/HR variance ratio ({row['ratio']:.3f}, mean over the sweep's scales) among the lambdas "
            f"whose PSNR stays within {tolerance:g} dB of L1 alone at every scale"
        )
    else:
        row = agg.loc[agg["worst"].idxmin()]
        why = f"no lambda kept PSNR within {tolerance:g} dB of L1 alone; smallest worst-scale PSNR loss"
    return float(row["lambda"]), why


def _export(work: Path, spec: RunSpec, target: Path) -> Path:
    """Re-save a reproduction run's final weights as fp16 ``target`` and return it."""
    return export_half(work / "runs" / spec.name / "last.safetensors", target, spec.label, spec.protocol)


def export_half(source: Path, target: Path, label: str, degradation: str) -> Path:
    """Re-save a run's checkpoint ``source`` as fp16 ``target`` and return ``target``.

    Metadata is kept and ``label`` set; the checkpoint's own ``degradation`` wins over the given one.
    """
    from gvcore.checkpoint import CheckpointMeta, load_model, save_checkpoint

    model, meta = load_model(source)
    options = CheckpointMeta.from_dict(meta).save_options()
    options |= {"label": label, "degradation": options["degradation"] or degradation}
    save_checkpoint(target, model, half=True, **options)
    return target


def _eval_data(plan: ReproPlan, work: Path) -> str:
    from gvcore.bundled import bundled_image_paths

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


def _evaluate_all(checkpoints: dict[int, list[Path]], data: str, protocol: Protocol, progress: bool) -> Any:
    import pandas as pd

    from gvcore.evaluation import evaluate

    frames = [
        evaluate(paths, data, scale, protocol, progress=progress) for scale, paths in checkpoints.items()
    ]
    return pd.concat(frames, ignore_index=True)


def _grid(plan: ReproPlan, loss: str, weight: float) -> list[RunSpec]:
    """The main grid for one loss: every preset and scale, standard seeds and official seeds."""
    specs = [
        RunSpec(a, s, loss, seed, weight) for a in plan.presets for s in plan.scales for seed in plan.seeds
    ]
    specs += [
        RunSpec(a, s, loss, seed, weight, protocol="official")
        for a in plan.official_presets
        for s in plan.scales
        for seed in plan.official_seeds
    ]
    return specs


def reproduce(
    out: str | Path = "assets",
    work: str | Path | None = None,
    smoke: bool = False,
    jobs: int = 2,
    progress: bool = True,
    plan: ReproPlan | None = None,
) -> dict[str, Any]:
    """Run the bundled reproduction (module docstring) and return its metadata (also in reproduce_meta.json).

    Args:
        out: assets folder; ``checkpoints/`` and ``results/`` are written inside. With ``smoke`` and the
            default ``"assets"``, a temporary folder is used instead so the shipped assets stay untouched.
        work: run directories (kept, so a killed reproduction resumes); default ``runs/reproduce`` (a temp
            folder with ``smoke``).
        smoke: the few-step CI version (:data:`SMOKE_PLAN`).
        jobs: trainings in parallel (processes), each with ``cpu_count // jobs`` threads.
        progress: progress bars during evaluation.
        plan: override the plan (tests).
    """
    import pandas as pd
    import torch

    from gvcore import __version__
    from gvcore.bundled import bundled_image_paths
    from gvcore.evaluation import write_csv
    from gvcore.stats import paired_table
    from gvcore.training import DEFAULT_GV_WEIGHT

    plan = plan or (SMOKE_PLAN if smoke else PLAN)
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="gvcore-smoke-") if smoke else None
    out_dir = Path(tmp) / "assets" if smoke and str(out) == "assets" and tmp else Path(out)
    work_dir = Path(work) if work else (Path(tmp) / "work" if tmp else Path("runs") / "reproduce")
    ckpt_dir, results = out_dir / "checkpoints", out_dir / "results"
    for folder in (ckpt_dir / "sweep", ckpt_dir / "official", results / "logs", work_dir / "runs"):
        folder.mkdir(parents=True, exist_ok=True)
    for stale in list(ckpt_dir.rglob("*.safetensors")):  # a shipped set is replaced whole, never mixed
        stale.unlink()
    train_paths = bundled_image_paths("train")
    train_data = _subset(train_paths, plan.train_images, work_dir / "data" / "train", plan.image_crop)
    eval_data = _eval_data(plan, work_dir)
    # the lambda sweep is scored on train images held out of its own training, never on the test split
    holdout = [p for p in train_paths if p.name in plan.sweep_holdout]
    kept = [p for p in train_paths if p.name not in plan.sweep_holdout]
    sweep_train = _subset(
        kept, plan.train_images or len(kept), work_dir / "data" / "sweep_train", plan.image_crop
    )
    sweep_val = _subset(holdout, None, work_dir / "data" / "sweep_val", plan.image_crop, force=True)
    main_data, sweep_data = (train_data, eval_data), (sweep_train, sweep_val)

    grid_l1 = _grid(plan, "l1", 0.0)
    sweep = [
        RunSpec(plan.sweep_preset, scale, "l1+gv" if w else "l1", seed, w, sweep=True)
        for scale in plan.sweep_scales
        for w in (0.0, *plan.sweep_lambdas)
        for seed in plan.sweep_seeds
    ]
    print(f"[1/4] training {len(grid_l1)} L1 runs and {len(sweep)} sweep runs", flush=True)
    runs = [(spec, main_data) for spec in grid_l1] + [(spec, sweep_data) for spec in sweep]
    _run_all(runs, plan, work_dir, jobs)

    print(
        f"[2/4] scoring the lambda sweeps on held-out train images ({', '.join(plan.sweep_holdout)})",
        flush=True,
    )
    sweep_paths: dict[int, list[Path]] = {}
    for spec in sweep:
        target = ckpt_dir / "sweep" / f"{spec.name}.safetensors"
        sweep_paths.setdefault(spec.scale, []).append(_export(work_dir, spec, target))
    sweep_frame = _evaluate_all(sweep_paths, sweep_val, "standard", progress)
    write_csv(sweep_frame, results / "eval_sweep.csv")
    sweep_table = _sweep_table(sweep_frame, sweep, plan.bootstrap_resamples)
    write_csv(sweep_table, results / "lambda_sweep.csv")
    lam, why = choose_lambda(sweep_table, plan.psnr_tolerance)
    print(f"      lambda = {lam:g}: {why}", flush=True)
    if lam != DEFAULT_GV_WEIGHT["l1"]:
        print(
            f"      note: gvcore.training.DEFAULT_GV_WEIGHT['l1'] is {DEFAULT_GV_WEIGHT['l1']:g}", flush=True
        )

    grid_gv = _grid(plan, "l1+gv", lam)
    print(f"[3/4] training {len(grid_gv)} L1+GV runs (lambda {lam:g})", flush=True)
    _run_all([(spec, main_data) for spec in grid_gv], plan, work_dir, jobs)
    runs_dir = work_dir / "runs"

    print("[4/4] evaluating: standard-degradation models (standard), official-degradation models (official)")
    shipped: dict[str, dict[int, list[Path]]] = {"standard": {}, "official": {}}
    files: dict[str, str] = {}
    for spec in grid_l1 + grid_gv:
        path = _export(work_dir, spec, ckpt_dir / spec.folder / f"{spec.name}.safetensors")
        shipped[spec.protocol].setdefault(spec.scale, []).append(path)
        files[spec.label] = str(path.relative_to(out_dir))
        shutil.copyfile(runs_dir / spec.name / "log.csv", results / "logs" / f"{spec.name}.csv")
    for spec in sweep:
        files[spec.label] = str((ckpt_dir / "sweep" / f"{spec.name}.safetensors").relative_to(out_dir))
    tables: dict[str, Any] = {}
    protocols: tuple[Protocol, ...] = ("standard", "official")
    for protocol in protocols:
        tables[protocol] = _evaluate_all(shipped[protocol], eval_data, protocol, progress)
        write_csv(tables[protocol], results / f"eval_{protocol}.csv")
    paired = paired_table(
        pd.concat([tables[p] for p in protocols], ignore_index=True),
        resamples=plan.bootstrap_resamples,
    )
    write_csv(paired, results / "paired.csv")
    meta = {
        "command": "gvcore reproduce" + (" --smoke" if smoke else ""),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "jobs": jobs,
        "cpu_count": os.cpu_count(),
        "plan": dataclasses.asdict(plan),
        "lambda": lam,
        "lambda_reason": why,
        "eval_data": eval_data,  # "bundled" (the test split) or the folder of the images scored
        "sweep_data": sweep_val,
        "checkpoints": files,
        "gvcore_version": __version__,
        "torch_version": torch.__version__,
        "pandas_version": pd.__version__,
    }
    write_summary(results / "summary.md", tables, sweep_table, paired, meta)
    (results / "reproduce_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"done in {meta['wall_time_s']:.0f} s -> {out_dir}", flush=True)
    return {**meta, "out": str(out_dir)}


def _sweep_table(frame: Any, specs: list[RunSpec], resamples: int) -> Any:
    """Per (scale, lambda): mean metrics over images and seeds, and paired deltas vs lambda = 0 with 95 % CIs."""
    import pandas as pd

    from gvcore.stats import paired_statistics

    rows = []
    by_label = {spec.label: spec for spec in specs}
    scored = frame[frame["method"].isin(list(by_label))].copy()
    scored["lambda"] = scored["method"].map(lambda m: by_label[m].gv_weight)
    scored["run_seed"] = scored["method"].map(lambda m: by_label[m].seed)
    for (scale, lam), part in scored.groupby(["scale", "lambda"], sort=True):
        base = scored[(scored["scale"] == scale) & (scored["lambda"] == 0)].set_index(["image", "run_seed"])
        here = part.set_index(["image", "run_seed"])
        common = here.index.intersection(base.index)
        row: dict[str, Any] = {"scale": int(scale), "lambda": float(lam), "n": len(common)}
        for metric in ("psnr", "ssim", "var_ratio", "gv_distance"):
            row[metric] = float(here[metric].mean())
        for metric in ("psnr", "var_ratio"):
            deltas = here.loc[common, metric].to_numpy(float) - base.loc[common, metric].to_numpy(float)
            stats = paired_statistics(deltas, resamples=resamples) if lam else None
            row[f"d_{metric}"] = stats.mean_delta if stats else 0.0
            row[f"d_{metric}_ci_low"] = stats.ci_low if stats else math.nan
            row[f"d_{metric}_ci_high"] = stats.ci_high if stats else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`.

    Attributes:
        ok: every checked value is within tolerance.
        message: a one-paragraph human-readable summary.
        max_abs_diff: the largest absolute difference per checked column.
    """

    ok: bool
    message: str
    max_abs_diff: dict[str, float]


def verify(
    out: str | Path = "assets",
    methods: Iterable[str] | None = None,
    tolerance_db: float = 1e-3,
    progress: bool = False,
) -> VerifyReport:
    """Re-evaluate the shipped checkpoints and compare with the shipped ``eval_*.csv`` tables.

    Args:
        out: the assets folder of a reproduction.
        methods: checkpoint labels to check (default all); HR and bicubic rows are always checked.
        tolerance_db: PSNR tolerance; SSIM and the variance columns get ``tolerance_db / 100``
            (relative for the variances).
        progress: show progress bars while re-evaluating.

    Returns:
        The comparison's outcome; ``ok`` is false when any value is out of tolerance.

    Raises:
        ValueError: ``out`` holds no reproduction, a method is unknown, or the scored images are gone.
    """
    import pandas as pd

    out_dir = Path(out)
    meta_path = out_dir / "results" / "reproduce_meta.json"
    if not meta_path.is_file():
        raise ValueError(
            f"no reproduction in {out_dir}: {meta_path} is missing (run `gvcore reproduce` first)"
        )
    meta = json.loads(meta_path.read_text())
    files: dict[str, str] = meta["checkpoints"]
    wanted = set(methods) if methods is not None else set(files)
    unknown = wanted - set(files)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; shipped: {sorted(files)}")
    data = meta["eval_data"]
    if data != "bundled" and not Path(data).is_dir():
        raise ValueError(f"the images this reproduction was scored on are gone: {data}")
    worst: dict[str, float] = {}
    problems: list[str] = []
    checks: list[tuple[str, Protocol, str]] = [
        ("eval_standard.csv", "standard", data),
        ("eval_official.csv", "official", data),
    ]
    sweep_csv = out_dir / "results" / "eval_sweep.csv"
    if sweep_csv.is_file():
        checks.append(("eval_sweep.csv", "standard", _sweep_data_for_verify(meta)))
    for csv_name, protocol, images in checks:
        shipped = pd.read_csv(out_dir / "results" / csv_name)
        for scale in sorted(shipped["scale"].unique()):
            labels = [m for m in shipped[shipped["scale"] == scale]["method"].unique() if m in wanted]
            if labels:
                _compare_fresh(
                    shipped[shipped["scale"] == scale],
                    [out_dir / files[m] for m in labels],
                    (images, int(scale), protocol),
                    labels,
                    (tolerance_db, progress),
                    worst,
                    problems,
                )
    ok = not problems
    summary = ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
    message = (
        ("verified: shipped tables reproduced (max diff " + summary + ")") if ok else "; ".join(problems)
    )
    return VerifyReport(ok, message, worst)


def _sweep_data_for_verify(meta: dict[str, Any]) -> str:
    """The sweep's scoring images: the folder the reproduction used, or the same held-out subset rebuilt."""
    folder = str(meta.get("sweep_data") or "")
    if folder and Path(folder).is_dir():
        return folder
    from gvcore.bundled import bundled_image_paths

    plan = meta["plan"]
    holdout = [p for p in bundled_image_paths("train") if p.name in plan["sweep_holdout"]]
    target = Path(tempfile.mkdtemp(prefix="gvcore-verify-")) / "sweep_val"
    return _subset(holdout, None, target, plan.get("image_crop"), force=True)


def _compare_fresh(
    shipped: Any,
    paths: list[Path],
    setting: tuple[str, int, Protocol],
    labels: list[str],
    tolerances: tuple[float, bool],
    worst: dict[str, float],
    problems: list[str],
) -> None:
    """Re-evaluate ``paths`` and record the largest difference per column against the ``shipped`` rows."""
    from gvcore.data import BASELINE_NAMES
    from gvcore.evaluation import evaluate

    images, scale, protocol = setting
    tolerance_db, progress = tolerances
    fresh = evaluate(paths, images, scale, protocol, progress=progress)
    keep = ["HR", BASELINE_NAMES[protocol], *labels]
    a = shipped[shipped["method"].isin(keep)].set_index(["method", "image"])
    b = fresh.set_index(["method", "image"]).loc[a.index]
    for column, tol, relative in (
        ("psnr", tolerance_db, False),
        ("ssim", tolerance_db / 100, False),
        ("gv_distance", tolerance_db / 100, True),
        ("var_gx", tolerance_db / 100, True),
        ("var_gy", tolerance_db / 100, True),
        ("var_ratio", tolerance_db / 100, True),
    ):
        x, y = a[column].astype(float), b[column].astype(float)
        diff = (x - y).abs()
        if relative:
            diff = diff / y.abs().clip(lower=1e-12)
        diff = diff[~(x.isna() & y.isna())]
        worst[column] = max(worst.get(column, 0.0), float(diff.max()) if len(diff) else 0.0)
        if len(diff) and (diff.isna().any() or float(diff.max()) > tol):
            problems.append(f"{protocol} x{scale} {column}: max diff {float(diff.max()):.3g} > {tol:g}")


# ------------------------------------------------------------------------------------------------ summary.md


def _models(table: Any) -> Any:
    return table[table["arch"].notna() & (table["arch"] != "")]


def _per_seed(table: Any) -> Any:
    """Mean over images of each checkpoint's metrics, one row per (arch, scale, loss, seed)."""
    keys = ["arch", "scale", "loss", "seed"]
    columns = ["psnr", "ssim", "var_ratio", "gv_distance"]
    return _models(table).groupby(keys, sort=False)[columns].mean().reset_index()


def _mean_std(values: Any, digits: int) -> str:
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _ci(paired: Any, arch: str, scale: int, protocol: str, metric: str, digits: int) -> str:
    """``mean [low, high]`` of a paired.csv row, with a mark when the CI excludes zero."""
    row = paired[
        (paired["model"] == arch)
        & (paired["scale"] == scale)
        & (paired["protocol"] == protocol)
        & (paired["metric"] == metric)
    ]
    if row.empty:
        return ""
    r = row.iloc[0]
    if math.isnan(float(r["ci_low"])):
        return f"{r['mean_delta']:+.{digits}f}"
    mark = "" if r["ci_low"] <= 0 <= r["ci_high"] else " *"
    return f"{r['mean_delta']:+.{digits}f} [{r['ci_low']:+.{digits}f}, {r['ci_high']:+.{digits}f}]{mark}"


def _result_table(table: Any, paired: Any, protocol: str) -> list[str]:
    from gvcore.data import BASELINE_NAMES

    baseline = BASELINE_NAMES[protocol]
    per_seed = _per_seed(table)
    lines = [
        # The minus sign is the report's typography; the shipped summary.md and README tables quote it.
        f"| model | scale | seeds | n | {baseline} PSNR | L1 PSNR | L1 − {baseline} | L1+GV PSNR | ΔPSNR [95 % CI] "  # noqa: RUF001
        "| L1 SSIM | L1+GV SSIM | ΔSSIM [95 % CI] | L1 var ratio | L1+GV var ratio | Δ var ratio [95 % CI] "
        "| paper ΔPSNR / ΔSSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (arch, scale), group in per_seed.groupby(["arch", "scale"], sort=False):
        l1, gv = group[group["loss"] == "l1"], group[group["loss"] == "l1+gv"]
        base = table[(table["method"] == baseline) & (table["scale"] == scale)]["psnr"].mean()
        n_row = paired[
            (paired["model"] == arch) & (paired["scale"] == scale) & (paired["protocol"] == protocol)
        ]
        n = int(n_row["n"].iloc[0]) if len(n_row) else 0
        paper = PAPER_DELTAS.get((str(arch).replace("-lite", ""), int(scale)))
        paper_cell = f"{paper[0]:+.2f} / {paper[1]:+.4f}" if paper else ""
        lines.append(
            f"| {arch} | x{scale} | {len(l1)} | {n} | {base:.2f} | {_mean_std(l1['psnr'], 2)} | "
            f"{float(l1['psnr'].mean()) - base:+.2f} | {_mean_std(gv['psnr'], 2)} | "
            f"{_ci(paired, arch, scale, protocol, 'psnr', 3)} | {_mean_std(l1['ssim'], 4)} | "
            f"{_mean_std(gv['ssim'], 4)} | {_ci(paired, arch, scale, protocol, 'ssim', 4)} | "
            f"{_mean_std(l1['var_ratio'], 3)} | {_mean_std(gv['var_ratio'], 3)} | "
            f"{_ci(paired, arch, scale, protocol, 'var_ratio', 3)} | {paper_cell} |"
        )
    return lines


def _observation(table: Any) -> list[str]:
    lines = [
        "| model | scale | HR | bicubic | L1 | L1+GV |",
        "|---|---|---|---|---|---|",
    ]
    bicubic = table[table["method"] == "bicubic"].groupby("scale")["var_ratio"].mean()
    per_seed = _per_seed(table)
    for (arch, scale), group in per_seed.groupby(["arch", "scale"], sort=False):
        l1 = group[group["loss"] == "l1"]["var_ratio"]
        gv = group[group["loss"] == "l1+gv"]["var_ratio"]
        lines.append(
            f"| {arch} | x{scale} | 1 | {bicubic[scale]:.3f} | {_mean_std(l1, 3)} | {_mean_std(gv, 3)} |"
        )
    return lines


def _sweep_lines(sweep: Any) -> list[str]:
    lines = [
        "| scale | λ | n | PSNR | ΔPSNR vs λ=0 [95 % CI] | SSIM | SR/HR variance ratio | Δ ratio [95 % CI] "
        "| GV distance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(row: dict[str, Any], metric: str, digits: int) -> str:
        if row["lambda"] == 0:
            return ""
        low, high = row[f"d_{metric}_ci_low"], row[f"d_{metric}_ci_high"]
        mark = "" if low <= 0 <= high else " *"
        return f"{row[f'd_{metric}']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{mark}"

    for row in sweep.to_dict("records"):
        lines.append(
            f"| x{row['scale']} | {row['lambda']:g} | {row['n']} | {row['psnr']:.3f} | {cell(row, 'psnr', 3)} | "
            f"{row['ssim']:.4f} | {row['var_ratio']:.3f} | {cell(row, 'var_ratio', 3)} | "
            f"{row['gv_distance']:.4f} |"
        )
    return lines


def write_summary(path: Path, tables: dict[str, Any], sweep: Any, paired: Any, meta: dict[str, Any]) -> None:
    """Write ``summary.md``: the observation, both protocols' tables with paired CIs, the lambda sweeps."""
    plan = meta["plan"]
    steps = ", ".join(f"{a} {n}" for a, n in plan["steps"])
    lrs = ", ".join(f"{a} {v:g}" for a, v in plan["lr"])
    lines = [
        "# Bundled reproduction",
        "",
        f"Command: `{meta['command']}` — wall time {meta['wall_time_s']:.0f} s with {meta['jobs']} jobs on "
        f"{meta['cpu_count']} CPU cores; steps {steps}; Adam with cosine decay, lr {lrs}; batch "
        f"{plan['batch_size']}, crop {plan['crop']}; "
        f"seeds {', '.join(map(str, plan['seeds']))} (standard degradation), "
        f"{', '.join(map(str, plan['official_seeds']))} (official degradation); L1+GV with λ = "
        f"{meta['lambda']:g}. Test data: "
        f"{'the bundled test split' if meta['eval_data'] == 'bundled' else meta['eval_data']}.",
        "",
        # The report's minus sign, as in the shipped summary.md.
        "Δ = (L1+GV) − L1, paired by (image, seed); n pairs; 95 % percentile-bootstrap CI of the mean "  # noqa: RUF001
        f"({plan['bootstrap_resamples']} resamples, seed 0); `*` marks a CI that excludes zero (the others are "
        "not distinguishable from zero). Wilcoxon p-values are in `paired.csv`.",
        "",
        "## The observation: SR/HR gradient-variance ratio (standard protocol)",
        "",
        "Per image, the mean over Gx and Gy of the output's mean patch variance (p = 8, gray, Sobel) divided by "
        "HR's; mean over test images (± std over seeds). 1 = as much structure as HR.",
        "",
        *_observation(tables["standard"]),
    ]
    for protocol, caption in (
        (
            "standard",
            "standard protocol — models trained on MATLAB-bicubic LR, scored on MATLAB-bicubic LR "
            "(Y channel, border = scale, 8-bit outputs)",
        ),
        (
            "official",
            "official GV protocol — models trained on PIL-bilinear LR, scored on PIL-bilinear LR (RGB PSNR on "
            "raw outputs, official luma SSIM with same/symm filtering, 2-px shave)",
        ),
    ):
        lines += [
            "",
            f"## PSNR / SSIM, {caption}",
            "",
            "Mean over test images (± std over seeds). The paper's column is its base → base+GV change on DIV2K "
            "val (official protocol, full-size models; its VDSR is trained with MSE).",
            "",
            *_result_table(tables[protocol], paired, protocol),
        ]
    holdout = ", ".join(plan["sweep_holdout"])
    lines += [
        "",
        f"## λ sweeps ({plan['sweep_preset']}, standard protocol, seeds {', '.join(map(str, plan['sweep_seeds']))}, "
        f"scored on the train images held out of the sweeps' training: {holdout})",
        "",
        *_sweep_lines(sweep),
        "",
        f"Shipped λ = {meta['lambda']:g}: {meta['lambda_reason']}.",
        "",
    ]
    path.write_text("\n".join(lines))


def write_tier_summary(path: Path, table: Any, paired: Any, meta: dict[str, Any]) -> None:
    """``summary_full.md`` of the GPU tier (:mod:`gvcore.reproduce_full`): its own table, standard protocol."""
    steps = ", ".join(f"{k} {v}" for k, v in meta["steps"].items())
    lines = [
        "# Full-size tier (GPU)",
        "",
        f"Command: `{meta['command']}` on {meta['device']} — wall time {meta['wall_time_s']:.0f} s; steps {steps} "
        f"(from a measured time budget of {meta['plan']['budget_s']:g} s per run); batch "
        f"{meta['plan']['batch_size']}, crop {meta['plan']['crop']}, Adam + cosine, seed {meta['plan']['seed']}; "
        f"L1+GV with λ = {meta['lambda']:g}. Trained on the bundled train split (MATLAB-bicubic LR), scored on "
        "the bundled test split under the standard protocol on CPU (`gvcore.reproduce_full.evaluate_full`).",
        "",
        "One seed: n = test images; Δ and 95 % CI as in `summary.md`.",
        "",
        *_result_table(table, paired, "standard"),
        "",
    ]
    path.write_text("\n".join(lines))
