"""The bundled reproduction: ``gvcore reproduce`` trains the paper's grid on the bundled data and writes ``assets/``.

What it runs (:data:`PLAN`), all on the bundled train split, standard-protocol LR, identical seeds:

1. **L1 runs and the lambda sweep** -- {vdsr-lite, edsr-lite, espcn} x {x2, x4} with L1, two extra seeds of
   the extra-seed configuration; and the sweep preset at lambda = 0 and every ``sweep_lambdas`` value, trained
   on the train split minus ``sweep_holdout`` (so the sweep never sees the test split).
2. **lambda** -- the sweep is scored on the held-out train images (standard protocol) into
   ``lambda_sweep.csv``; the shipped lambda is the one restoring the most gradient variance (highest
   ``var_ratio``) among those whose PSNR stays within ``psnr_tolerance`` dB of L1 alone (:func:`choose_lambda`).
3. **L1+GV runs** with that lambda, extra seeds included, on the whole train split.
4. **Evaluation** of the fp16 checkpoints shipped in ``assets/checkpoints/`` on the bundled test split
   under both protocols -> ``eval_standard.csv``, ``eval_official.csv``; ``summary.md`` (the observation
   and the PSNR/SSIM table, mean +- std over seeds); ``reproduce_meta.json`` (wall time, plan, lambda,
   versions, checkpoint files); training logs in ``results/logs/``.

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
    #: optimizer steps per preset: ESPCN is ~10x cheaper per step than the others and learns slowest.
    steps: tuple[tuple[str, int], ...] = (("vdsr-lite", 600), ("edsr-lite", 800), ("espcn", 2000))
    #: learning-rate overrides per preset (others: the recipe default of gvcore.train).
    lr: tuple[tuple[str, float], ...] = (("espcn", 2e-3),)
    batch_size: int = 16
    crop: int = 64
    seed: int = 0
    extra_seeds: tuple[int, ...] = (1, 2)
    extra_seed_config: tuple[str, int] = ("espcn", 2)
    sweep_config: tuple[str, int] = ("espcn", 2)
    sweep_lambdas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    #: bundled train images held out of the sweep's training and used to score it (structure-rich).
    sweep_holdout: tuple[str, ...] = ("coffee.png", "brick.png")
    psnr_tolerance: float = 0.05
    log_every: int = 10
    val_every: int = 100
    train_images: int | None = None  # None = the whole bundled train split
    eval_images: int | None = None  # None = the whole bundled test split
    image_crop: int | None = None  # centre-crop the images used (smoke only)


#: the shipped reproduction (measured budget: see bench/README.md and the report in reproduce_meta.json).
PLAN = ReproPlan()
#: CI's few-step version of the same pipeline.
SMOKE_PLAN = ReproPlan(
    steps=(("vdsr-lite", 2), ("edsr-lite", 2), ("espcn", 3)),
    batch_size=2,
    crop=32,
    extra_seeds=(1,),
    sweep_lambdas=(0.1, 1.0),
    log_every=1,
    val_every=2,
    train_images=2,
    eval_images=1,
    image_crop=96,
)

#: The paper's L1 -> L1+GV change on DIV2K val (official protocol), (dPSNR dB, dSSIM), by preset and scale.
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

    @property
    def name(self) -> str:
        """File-friendly run name, e.g. ``espcn-x2-l1-gv-s0`` (``-w0.03`` for sweep points)."""
        weight = f"-w{self.gv_weight:g}" if self.sweep else ""
        return f"{self.arch}-x{self.scale}-{self.loss.replace('+', '-')}{weight}-s{self.seed}"

    @property
    def label(self) -> str:
        weight = f" λ={self.gv_weight:g}" if self.sweep else ""
        return f"{self.arch}-x{self.scale}-{self.loss}{weight}-s{self.seed}"


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
    per_step = SECONDS_PER_STEP.get((spec.arch, spec.scale), 0.3) * 1.1
    return per_step * dict(plan.steps)[spec.arch] * plan.batch_size / 16 * (plan.crop / 64) ** 2


def _train_one(
    spec: RunSpec, plan: ReproPlan, data: tuple[str, str], work: str, threads: int
) -> tuple[str, float, dict]:
    """Worker: train one run (a top-level function, so a spawned process can run it)."""
    import torch

    from gvcore.train import TrainConfig, train

    torch.set_num_threads(threads)
    config = TrainConfig(
        arch=spec.arch,
        scale=spec.scale,
        out=str(Path(work) / "runs" / spec.name),
        loss=spec.loss,
        data=data[0],
        val_data=data[1],
        steps=dict(plan.steps)[spec.arch],
        lr=dict(plan.lr).get(spec.arch),
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

    Among ``lambda > 0`` whose mean PSNR is within ``tolerance`` dB of ``lambda = 0`` (L1 alone), the one with
    the highest mean SR/HR gradient-variance ratio; if none stays within the tolerance, the best-PSNR one.
    """
    base = float(sweep.loc[sweep["lambda"] == 0, "psnr"].iloc[0])
    positive = sweep[sweep["lambda"] > 0]
    within = positive[positive["psnr"] >= base - tolerance]
    if len(within):
        row = within.loc[within["var_ratio"].idxmax()]
        why = (
            f"highest SR/HR variance ratio ({row['var_ratio']:.3f}) among the lambdas whose PSNR stays within "
            f"{tolerance:g} dB of L1 alone ({base:.3f} dB)"
        )
    else:
        row = positive.loc[positive["psnr"].idxmax()]
        why = f"no lambda kept PSNR within {tolerance:g} dB of L1 alone ({base:.3f} dB); best-PSNR lambda"
    return float(row["lambda"]), why


def _export(work: Path, spec: RunSpec, target: Path) -> Path:
    """Re-save a run's final weights as fp16 ``target`` (metadata kept) and return it."""
    from gvcore.checkpoint import load_model, save_checkpoint

    model, meta = load_model(work / "runs" / spec.name / "last.safetensors")
    save_checkpoint(
        target,
        model,
        arch=meta["arch"],
        arch_kwargs=meta.get("arch_kwargs") or {},
        scale=meta["scale"],
        loss=meta.get("loss") or {},
        data=meta.get("data"),
        steps=meta.get("steps"),
        seed=meta.get("seed"),
        metrics=meta.get("metrics") or {},
        label=spec.label,
        half=True,
    )
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

    from gvcore.evaluate import evaluate

    frames = [
        evaluate(paths, data, scale, protocol, progress=progress) for scale, paths in checkpoints.items()
    ]
    return pd.concat(frames, ignore_index=True)


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
    from gvcore.evaluate import write_csv
    from gvcore.train import DEFAULT_GV_WEIGHT

    plan = plan or (SMOKE_PLAN if smoke else PLAN)
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="gvcore-smoke-") if smoke else None
    out_dir = Path(tmp) / "assets" if smoke and str(out) == "assets" and tmp else Path(out)
    work_dir = Path(work) if work else (Path(tmp) / "work" if tmp else Path("runs") / "reproduce")
    ckpt_dir, results = out_dir / "checkpoints", out_dir / "results"
    for folder in (ckpt_dir / "sweep", results / "logs", work_dir / "runs"):
        folder.mkdir(parents=True, exist_ok=True)
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

    grid_l1 = [RunSpec(a, s, "l1", plan.seed) for a in plan.presets for s in plan.scales]
    extra_arch, extra_scale = plan.extra_seed_config
    extra_l1 = [RunSpec(extra_arch, extra_scale, "l1", seed) for seed in plan.extra_seeds]
    sweep_arch, sweep_scale = plan.sweep_config
    sweep = [
        RunSpec(sweep_arch, sweep_scale, "l1+gv" if w else "l1", plan.seed, w, sweep=True)
        for w in (0.0, *plan.sweep_lambdas)
    ]
    print(f"[1/4] training {len(grid_l1) + len(extra_l1)} L1 runs and {len(sweep)} sweep runs", flush=True)
    runs = [(spec, main_data) for spec in grid_l1 + extra_l1] + [(spec, sweep_data) for spec in sweep]
    _run_all(runs, plan, work_dir, jobs)

    print(
        f"[2/4] scoring the lambda sweep on held-out train images ({', '.join(plan.sweep_holdout)})",
        flush=True,
    )
    sweep_paths = [_export(work_dir, s, ckpt_dir / "sweep" / f"{s.name}.safetensors") for s in sweep]
    frame = _evaluate_all({sweep_scale: sweep_paths}, sweep_val, "standard", progress)
    sweep_table = _sweep_table(frame, sweep)
    write_csv(sweep_table, results / "lambda_sweep.csv")
    lam, why = choose_lambda(sweep_table, plan.psnr_tolerance)
    print(f"      lambda = {lam:g}: {why}", flush=True)
    if lam != DEFAULT_GV_WEIGHT["l1"]:
        print(f"      note: gvcore.train.DEFAULT_GV_WEIGHT['l1'] is {DEFAULT_GV_WEIGHT['l1']:g}", flush=True)

    grid_gv = [RunSpec(a, s, "l1+gv", plan.seed, lam) for a in plan.presets for s in plan.scales]
    extra_gv = [RunSpec(extra_arch, extra_scale, "l1+gv", seed, lam) for seed in plan.extra_seeds]
    print(f"[3/4] training {len(grid_gv) + len(extra_gv)} L1+GV runs (lambda {lam:g})", flush=True)
    _run_all([(spec, main_data) for spec in grid_gv + extra_gv], plan, work_dir, jobs)
    runs_dir = work_dir / "runs"

    print("[4/4] evaluating under both protocols", flush=True)
    shipped: dict[int, list[Path]] = {}
    files: dict[str, str] = {}
    for spec in grid_l1 + grid_gv + extra_l1 + extra_gv:
        path = _export(work_dir, spec, ckpt_dir / f"{spec.name}.safetensors")
        shipped.setdefault(spec.scale, []).append(path)
        files[spec.label] = str(path.relative_to(out_dir))
        shutil.copyfile(runs_dir / spec.name / "log.csv", results / "logs" / f"{spec.name}.csv")
    tables: dict[str, Any] = {}
    protocols: tuple[Protocol, ...] = ("standard", "official")
    for protocol in protocols:
        tables[protocol] = _evaluate_all(shipped, eval_data, protocol, progress)
        write_csv(tables[protocol], results / f"eval_{protocol}.csv")
    meta = {
        "command": "gvcore reproduce" + (" --smoke" if smoke else ""),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "jobs": jobs,
        "cpu_count": os.cpu_count(),
        "plan": dataclasses.asdict(plan),
        "lambda": lam,
        "lambda_reason": why,
        "eval_data": eval_data,  # "bundled" (the test split) or the folder of the images scored
        "checkpoints": files,
        "gvcore_version": __version__,
        "torch_version": torch.__version__,
        "pandas_version": pd.__version__,
    }
    write_summary(results / "summary.md", tables, sweep_table, meta)
    (results / "reproduce_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"done in {meta['wall_time_s']:.0f} s -> {out_dir}", flush=True)
    return {**meta, "out": str(out_dir)}


def _sweep_table(frame: Any, specs: list[RunSpec]) -> Any:
    import pandas as pd

    hr = frame[frame["method"] == "HR"].set_index("image")
    rows = []
    for spec in specs:
        part = frame[frame["method"] == spec.label].set_index("image")
        ratio = 0.5 * (part["var_gx"] / hr["var_gx"] + part["var_gy"] / hr["var_gy"])
        rows.append(
            {
                "lambda": spec.gv_weight,
                "psnr": part["psnr"].mean(),
                "ssim": part["ssim"].mean(),
                "var_ratio": ratio.mean(),
                "gv_distance": part["gv_distance"].mean(),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class VerifyReport:
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
    problems = []
    protocols: tuple[Protocol, ...] = ("standard", "official")
    for protocol in protocols:
        shipped = pd.read_csv(out_dir / "results" / f"eval_{protocol}.csv")
        for scale in sorted(shipped["scale"].unique()):
            labels = [m for m in shipped[shipped["scale"] == scale]["method"].unique() if m in wanted]
            paths = [out_dir / files[m] for m in labels]
            if not paths:
                continue
            from gvcore.evaluate import evaluate

            fresh = evaluate(paths, data, int(scale), protocol, progress=progress)
            keep = ["HR", "bicubic", *labels]
            a = shipped[(shipped["scale"] == scale) & shipped["method"].isin(keep)].set_index(
                ["method", "image"]
            )
            b = fresh.set_index(["method", "image"]).loc[a.index]
            for column, tol, relative in (
                ("psnr", tolerance_db, False),
                ("ssim", tolerance_db / 100, False),
                ("gv_distance", tolerance_db / 100, True),
                ("var_gx", tolerance_db / 100, True),
                ("var_gy", tolerance_db / 100, True),
            ):
                x, y = a[column].astype(float), b[column].astype(float)
                diff = (x - y).abs()
                if relative:
                    diff = diff / y.abs().clip(lower=1e-12)
                diff = diff[~(x.isna() & y.isna())]
                worst[column] = max(worst.get(column, 0.0), float(diff.max()) if len(diff) else 0.0)
                if len(diff) and (diff.isna().any() or float(diff.max()) > tol):
                    problems.append(
                        f"{protocol} x{scale} {column}: max diff {float(diff.max()):.3g} > {tol:g}"
                    )
    ok = not problems
    summary = ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
    message = (
        ("verified: shipped tables reproduced (max diff " + summary + ")") if ok else "; ".join(problems)
    )
    return VerifyReport(ok, message, worst)


# ------------------------------------------------------------------------------------------------ summary.md


def _per_seed(table: Any, method_filter: Any) -> Any:
    """Mean over images of each checkpoint's metrics, one row per (arch, scale, loss, seed)."""
    rows = table[method_filter]
    keys = ["arch", "scale", "loss", "seed"]
    return rows.groupby(keys, sort=False)[["psnr", "ssim", "var_gx", "var_gy"]].mean().reset_index()


def _mean_std(values: Any, digits: int) -> str:
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _observation(table: Any, seed: int) -> list[str]:
    def variance(rows: Any) -> float:
        return float(((rows["var_gx"] + rows["var_gy"]) / 2).mean())

    lines = [
        "| model | scale | HR | bicubic | L1 | L1+GV | L1 / HR | L1+GV / HR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    models = table[table["arch"].notna() & (table["arch"] != "")]
    for (arch, scale), _ in models.groupby(["arch", "scale"], sort=False):
        at = table[table["scale"] == scale]
        hr, bic = variance(at[at["method"] == "HR"]), variance(at[at["method"] == "bicubic"])
        pick = at[(at["arch"] == arch) & (at["seed"] == seed)]
        l1, gv = variance(pick[pick["loss"] == "l1"]), variance(pick[pick["loss"] == "l1+gv"])
        lines.append(
            f"| {arch} | x{scale} | {hr:.4f} | {bic:.4f} | {l1:.4f} | {gv:.4f} | {l1 / hr:.3f} | {gv / hr:.3f} |"
        )
    return lines


def _psnr_table(table: Any) -> list[str]:
    per_seed = _per_seed(table, table["arch"].notna() & (table["arch"] != ""))
    lines = [
        "| model | scale | seeds | bicubic PSNR | L1 PSNR | L1+GV PSNR | ΔPSNR | L1 SSIM | L1+GV SSIM | ΔSSIM "
        "| paper ΔPSNR / ΔSSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (arch, scale), group in per_seed.groupby(["arch", "scale"], sort=False):
        l1, gv = group[group["loss"] == "l1"], group[group["loss"] == "l1+gv"]
        common = sorted(set(l1["seed"]) & set(gv["seed"]))
        l1 = l1[l1["seed"].isin(common)].sort_values("seed")
        gv = gv[gv["seed"].isin(common)].sort_values("seed")
        bic = table[(table["method"] == "bicubic") & (table["scale"] == scale)]["psnr"].mean()
        d_psnr = gv["psnr"].to_numpy() - l1["psnr"].to_numpy()
        d_ssim = gv["ssim"].to_numpy() - l1["ssim"].to_numpy()
        paper = PAPER_DELTAS.get((str(arch).replace("-lite", ""), int(scale)))
        paper_cell = f"{paper[0]:+.2f} / {paper[1]:+.4f}" if paper else ""
        lines.append(
            f"| {arch} | x{scale} | {len(common)} | {bic:.2f} | {_mean_std(l1['psnr'], 2)} | "
            f"{_mean_std(gv['psnr'], 2)} | {_mean_std(d_psnr, 3)} | {_mean_std(l1['ssim'], 4)} | "
            f"{_mean_std(gv['ssim'], 4)} | {_mean_std(d_ssim, 4)} | {paper_cell} |"
        )
    return lines


def write_summary(path: Path, tables: dict[str, Any], sweep: Any, meta: dict[str, Any]) -> None:
    """Write ``summary.md``: the observation, the PSNR/SSIM tables of both protocols, the lambda sweep."""
    plan = meta["plan"]
    lines = [
        "# Bundled reproduction",
        "",
        f"Command: `{meta['command']}` — wall time {meta['wall_time_s']:.0f} s with {meta['jobs']} jobs on "
        f"{meta['cpu_count']} CPU cores; steps {', '.join(f'{a} {n}' for a, n in plan['steps'])}, batch {plan['batch_size']}, crop {plan['crop']}, "
        f"seed {plan['seed']}; L1+GV with λ = {meta['lambda']:g}. Test data: "
        f"{'the bundled test split' if meta['eval_data'] == 'bundled' else meta['eval_data']}.",
        "",
        f"## The observation: mean gradient variance of the outputs (standard protocol, seed {plan['seed']})",
        "",
        "Mean patch variance (p = 8, gray, Sobel) of Gx and Gy, averaged; higher = more structure. ",
        "",
        *_observation(tables["standard"], plan["seed"]),
    ]
    for protocol, caption in (
        ("standard", "standard protocol (Y channel, border = scale, MATLAB bicubic LR)"),
        ("official", "official GV protocol (RGB PSNR, offset-free luma SSIM, bilinear LR)"),
    ):
        lines += [
            "",
            f"## PSNR / SSIM, {caption}",
            "",
            "Mean over test images; with several seeds, mean ± sample std over seeds. The paper's column is its "
            "L1→L1+GV change on DIV2K val (official protocol, full-size models, MSE for VDSR).",
            "",
            *_psnr_table(tables[protocol]),
        ]
    lines += [
        "",
        f"## λ sweep ({plan['sweep_config'][0]} x{plan['sweep_config'][1]}, standard protocol, scored on the "
        f"train images held out of the sweep's training: {', '.join(plan['sweep_holdout'])})",
        "",
        "| λ | PSNR | SSIM | SR/HR variance ratio | GV distance |",
        "|---|---|---|---|---|",
    ]
    for row in sweep.to_dict("records"):
        lines.append(
            f"| {row['lambda']:g} | {row['psnr']:.3f} | {row['ssim']:.4f} | {row['var_ratio']:.3f} | "
            f"{row['gv_distance']:.4f} |"
        )
    lines += ["", f"Shipped λ = {meta['lambda']:g}: {meta['lambda_reason']}.", ""]
    path.write_text("\n".join(lines))
