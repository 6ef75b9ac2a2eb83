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
   of L1+GV - L1 (``paired.csv``, :func:`gvcore.eval.stats.paired_table`); ``summary.md``; ``reproduce_meta.json``
   (wall time, plan, lambda, versions, checkpoint files); training logs in ``results/logs/``.

Recipe departures from the paper, all for a 2-core CPU budget: lite models, L1 instead of MSE, crops of 64,
and Adam (lr 1e-3, cosine) for VDSR-lite instead of the official SGD 0.1 -- with a few hundred steps SGD left
VDSR-lite barely above bicubic (+0.24 dB at x2 in the first reproduction).

``--smoke`` runs the same pipeline with a few steps on a few images into a temporary folder (CI).
``verify`` re-evaluates the shipped checkpoints and compares with the shipped tables. Validation during training
(``log.csv``'s ``val_*``) uses centre crops of the test images for monitoring only: the last weights are shipped,
nothing is selected on the test split.

The pieces: :mod:`gvcore.reproduce.plan` (the grid and its budget), :mod:`gvcore.reproduce.runs` (training the
runs, fp16 export, scoring), :mod:`gvcore.reproduce.sweep` (the lambda sweep's table and the choice of
lambda), :mod:`gvcore.reproduce.summary` (``summary.md``), :mod:`gvcore.reproduce.verify` (``verify``). This
module runs the steps in order (:func:`reproduce`) and re-exports every public name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from gvcore import __version__
from gvcore.data.bundled import TEST_GROUPS, bundled_image_paths
from gvcore.eval.evaluate import write_csv
from gvcore.eval.stats import paired_table
from gvcore.protocol import Protocol
from gvcore.reproduce.plan import PLAN, SMOKE_PLAN, ReproPlan, RunSpec, _grid
from gvcore.reproduce.plan import SECONDS_PER_STEP as SECONDS_PER_STEP
from gvcore.reproduce.plan import plan_value as plan_value
from gvcore.reproduce.runs import _eval_data, _evaluate_all, _export, _run_all, _subset
from gvcore.reproduce.runs import export_half as export_half
from gvcore.reproduce.seeds import apply_seed_rule
from gvcore.reproduce.sentences import load_results
from gvcore.reproduce.summary import PAPER_DELTAS as PAPER_DELTAS
from gvcore.reproduce.summary import write_summary
from gvcore.reproduce.summary import write_tier_summary as write_tier_summary
from gvcore.reproduce.sweep import _sweep_table, choose_lambda
from gvcore.reproduce.verify import VerifyReport, _sweep_data_for_verify, verify
from gvcore.training.config import DEFAULT_GV_WEIGHT
from gvcore.zoo.registry import score_published

__all__ = [
    "PLAN",
    "SMOKE_PLAN",
    "ReproPlan",
    "VerifyReport",
    "choose_lambda",
    "reevaluate",
    "reproduce",
    "verify",
]


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
    plan = plan or (SMOKE_PLAN if smoke else PLAN)
    t0 = time.perf_counter()
    out_dir, work_dir = _folders(out, work, smoke)
    ckpt_dir, results = out_dir / "checkpoints", out_dir / "results"
    _prepare_folders(ckpt_dir, results, work_dir)
    train_paths = bundled_image_paths("train")
    train_data = _subset(train_paths, plan.train_images, work_dir / "data" / "train", plan.image_crop)
    eval_data = _eval_data(plan, work_dir)
    sweep_train, sweep_val = _sweep_images(plan, train_paths, work_dir)
    main_data, sweep_data = (train_data, eval_data), (sweep_train, sweep_val)

    grid_l1 = _grid(plan, "l1", 0.0)
    sweep = _sweep_specs(plan)
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
    sweep_frame = _evaluate_all(sweep_paths, sweep_val, Protocol.STANDARD, progress)
    write_csv(sweep_frame, results / "eval_sweep.csv")
    sweep_table = _sweep_table(sweep_frame, sweep, plan.bootstrap_resamples)
    write_csv(sweep_table, results / "lambda_sweep.csv")
    lam, why = choose_lambda(sweep_table, plan.psnr_tolerance)
    print(f"      lambda = {lam:g}: {why}", flush=True)
    if lam != DEFAULT_GV_WEIGHT["l1"]:
        print(
            f"      note: gvcore.training.run.DEFAULT_GV_WEIGHT['l1'] is {DEFAULT_GV_WEIGHT['l1']:g}",
            flush=True,
        )

    grid_gv = _grid(plan, "l1+gv", lam)
    print(f"[3/4] training {len(grid_gv)} L1+GV runs (lambda {lam:g})", flush=True)
    _run_all([(spec, main_data) for spec in grid_gv], plan, work_dir, jobs)

    print(
        "[4/4] failed-seed rule, then evaluating: standard-degradation models (standard), official (official)"
    )

    def retrain(fresh: list[RunSpec]) -> None:
        _run_all([(spec, main_data) for spec in fresh], plan, work_dir, jobs)

    runs_dir = work_dir / "runs"
    standard = [s for s in grid_l1 + grid_gv if s.protocol == "standard"]
    standard, seed_rule = apply_seed_rule(
        standard,
        lambda spec: runs_dir / spec.name / "last.safetensors",
        retrain,
        work_dir / "data" / "seed_rule",
    )
    grid = standard + [s for s in grid_l1 + grid_gv if s.protocol != "standard"]
    for spec in grid:
        _export(work_dir, spec, ckpt_dir / spec.folder / f"{spec.name}.safetensors")
        shutil.copyfile(runs_dir / spec.name / "log.csv", results / "logs" / f"{spec.name}.csv")
    meta = {
        "command": "gvcore reproduce" + (" --smoke" if smoke else ""),
        "wall_time_s": 0.0,
        "jobs": jobs,
        "cpu_count": os.cpu_count(),
        "plan": dataclasses.asdict(plan),
        "lambda": lam,
        "lambda_reason": why,
        "eval_data": eval_data,  # "bundled" (the test split) or the folder of the images scored
        "sweep_data": sweep_val,
        "seed_rule": seed_rule,
    }
    meta = _evaluate_and_write(out_dir, grid, sweep, meta, plan, progress, sweep_frame=sweep_frame)
    meta["wall_time_s"] = round(time.perf_counter() - t0, 1)
    (results / "reproduce_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"done in {meta['wall_time_s']:.0f} s -> {out_dir}", flush=True)
    return {**meta, "out": str(out_dir)}


def _folders(out: str | Path, work: str | Path | None, smoke: bool) -> tuple[Path, Path]:
    """``(out_dir, work_dir)``: with ``smoke``, a temporary folder stands in for the default ``assets``/work."""
    tmp = tempfile.mkdtemp(prefix="gvcore-smoke-") if smoke else None
    out_dir = Path(tmp) / "assets" if smoke and str(out) == "assets" and tmp else Path(out)
    work_dir = Path(work) if work else (Path(tmp) / "work" if tmp else Path("runs") / "reproduce")
    return out_dir, work_dir


def _prepare_folders(ckpt_dir: Path, results: Path, work_dir: Path) -> None:
    """Make the output folders and remove the previous checkpoints (a shipped set is replaced whole)."""
    for folder in (ckpt_dir / "sweep", ckpt_dir / "official", results / "logs", work_dir / "runs"):
        folder.mkdir(parents=True, exist_ok=True)
    for stale in list(ckpt_dir.rglob("*.safetensors")):  # a shipped set is replaced whole, never mixed
        stale.unlink()


def _sweep_images(plan: ReproPlan, train_paths: list[Path], work_dir: Path) -> tuple[str, str]:
    """The lambda sweep's ``(train, validation)`` data: validation = train images held out of its training.

    The sweep is scored on those held-out train images, never on the test split.
    """
    holdout = [p for p in train_paths if p.name in plan.sweep_holdout]
    kept = [p for p in train_paths if p.name not in plan.sweep_holdout]
    sweep_train = _subset(
        kept, plan.train_images or len(kept), work_dir / "data" / "sweep_train", plan.image_crop
    )
    sweep_val = _subset(holdout, None, work_dir / "data" / "sweep_val", plan.image_crop, force=True)
    return sweep_train, sweep_val


def _sweep_specs(plan: ReproPlan) -> list[RunSpec]:
    """The lambda sweep's runs: every sweep scale x (0 and each lambda) x sweep seed."""
    return [
        RunSpec(plan.sweep_preset, scale, "l1+gv" if w else "l1", seed, w, sweep=True)
        for scale in plan.sweep_scales
        for w in (0.0, *plan.sweep_lambdas)
        for seed in plan.sweep_seeds
    ]


def _move_failed(seed_rule: dict[str, Any], ckpt_dir: Path) -> dict[int, list[Path]]:
    """Move the checkpoints the seed rule replaced to ``checkpoints/failed/``; scale -> their new paths."""
    failed_paths: dict[int, list[Path]] = {}
    for done in seed_rule["replaced"]:
        name = _label_to_name(done["failed"])
        source, target = ckpt_dir / f"{name}.safetensors", ckpt_dir / "failed" / f"{name}.safetensors"
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
        failed_paths.setdefault(int(name.split("-x")[1].split("-")[0]), []).append(target)
    return failed_paths


def _evaluate_and_write(
    out_dir: Path,
    grid: list[RunSpec],
    sweep: list[RunSpec],
    meta: dict[str, Any],
    plan: ReproPlan,
    progress: bool,
    sweep_frame: Any = None,
) -> dict[str, Any]:
    """Score the shipped checkpoints of ``grid`` (and the sweep) and write every table, summary.md and the meta.

    Standard-degradation models are scored under the standard protocol, official-degradation ones under the
    official protocol, both on the test split with the noise control row; the sweep on its held-out images.
    """
    import pandas as pd
    import torch

    ckpt_dir, results = out_dir / "checkpoints", out_dir / "results"
    shipped: dict[str, dict[int, list[Path]]] = {"standard": {}, "official": {}}
    files: dict[str, str] = {}
    for spec in grid:
        path = ckpt_dir / spec.folder / f"{spec.name}.safetensors"
        shipped[spec.protocol].setdefault(spec.scale, []).append(path)
        files[spec.label] = str(path.relative_to(out_dir))
    for spec in sweep:
        files[spec.label] = str((ckpt_dir / "sweep" / f"{spec.name}.safetensors").relative_to(out_dir))
    if sweep_frame is None:
        sweep_paths: dict[int, list[Path]] = {}
        for spec in sweep:
            sweep_paths.setdefault(spec.scale, []).append(ckpt_dir / "sweep" / f"{spec.name}.safetensors")
        sweep_frame = _evaluate_all(sweep_paths, meta["sweep_data"], Protocol.STANDARD, progress)
        write_csv(sweep_frame, results / "eval_sweep.csv")
        write_csv(_sweep_table(sweep_frame, sweep, plan.bootstrap_resamples), results / "lambda_sweep.csv")
    sweep_table = pd.read_csv(results / "lambda_sweep.csv")
    tables: dict[str, Any] = {}
    protocols = tuple(Protocol)
    for protocol in protocols:
        tables[protocol] = _evaluate_all(shipped[protocol], meta["eval_data"], protocol, progress, noise=True)
        write_csv(tables[protocol], results / f"eval_{protocol}.csv")
    paired = paired_table(
        pd.concat([tables[p] for p in protocols], ignore_index=True),
        resamples=plan.bootstrap_resamples,
        groups=TEST_GROUPS if meta["eval_data"] == "bundled" else None,
    )
    write_csv(paired, results / "paired.csv")
    meta |= {
        "checkpoints": files,
        "gvcore_version": __version__,
        "torch_version": torch.__version__,
        "pandas_version": pd.__version__,
    }
    published = write_published(out_dir, meta["eval_data"], progress)
    if published is not None:
        tables["published"] = published
    write_summary(results / "summary.md", tables, sweep_table, paired, meta)
    (results / "reproduce_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def write_published(out_dir: Path, eval_data: str, progress: bool = False) -> Any:
    """Score the published checkpoints shipped in ``checkpoints/published`` into ``results/eval_published.csv``.

    Through :func:`gvcore.zoo.registry.score_published` (itself :func:`gvcore.eval.evaluate.evaluate`), each model under the
    degradation it was trained for, on the same test images as the reproduction. Returns the table, or ``None``
    when no published checkpoint ships.
    """
    paths = sorted((out_dir / "checkpoints" / "published").glob("*.safetensors"))
    if not paths:
        return None
    frame = score_published(paths, eval_data, progress=progress, lpips=False, noise=True)
    write_csv(frame, out_dir / "results" / "eval_published.csv")
    return frame


def rewrite_reports(out: str | Path = "assets") -> None:
    """Rewrite ``summary.md`` from the shipped CSVs and meta alone (no scoring): after a change of wording."""
    results = Path(out) / "results"
    tables, paired, sweep, meta = load_results(results)
    write_summary(results / "summary.md", tables, sweep, paired, meta)


def reevaluate(
    out: str | Path = "assets",
    work: str | Path | None = None,
    jobs: int = 2,
    progress: bool = True,
    plan: ReproPlan | None = None,
) -> dict[str, Any]:
    """Re-score a shipped reproduction on today's test split and metrics, applying the failed-seed rule once.

    The checkpoints of ``out`` are kept; a run the rule (:mod:`gvcore.reproduce.seeds`) finds failed is retrained
    with the next seed (into ``work``, default ``runs/reproduce``), exported next to the others, and its
    predecessor moved to ``checkpoints/failed/`` and scored into ``results/eval_failed_seeds.csv`` (its numbers
    stay visible; no table averages it). Then every table, ``summary.md`` and ``reproduce_meta.json`` are
    rewritten (``gvcore reproduce --reevaluate``).
    """
    plan = plan or PLAN
    out_dir, t0 = Path(out), time.perf_counter()
    meta_path = out_dir / "results" / "reproduce_meta.json"
    if not meta_path.is_file():
        raise ValueError(
            f"no reproduction in {out_dir}: {meta_path} is missing (run `gvcore reproduce` first)"
        )
    meta = json.loads(meta_path.read_text())
    work_dir = Path(work) if work else Path("runs") / "reproduce"
    ckpt_dir = out_dir / "checkpoints"
    lam = float(meta["lambda"])
    grid = _grid(plan, "l1", 0.0) + _grid(plan, "l1+gv", lam)
    previous = meta.get("seed_rule", {}).get("replaced", [])
    for done in previous:  # a rule already applied: start from its replacements
        grid = [_replacement(spec, done) for spec in grid]
    sweep = _sweep_specs(plan)
    eval_data = _eval_data(plan, work_dir)
    main_data = (
        _subset(bundled_image_paths("train"), plan.train_images, work_dir / "data" / "train", None),
        eval_data,
    )

    def retrain(fresh: list[RunSpec]) -> None:
        _run_all([(spec, main_data) for spec in fresh], plan, work_dir, jobs)
        for spec in fresh:
            _export(work_dir, spec, ckpt_dir / spec.folder / f"{spec.name}.safetensors")
            (out_dir / "results" / "logs").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                work_dir / "runs" / spec.name / "log.csv", out_dir / "results" / "logs" / f"{spec.name}.csv"
            )

    standard = [s for s in grid if s.protocol == "standard"]
    if previous:
        seed_rule = meta["seed_rule"]
    else:
        standard, seed_rule = apply_seed_rule(
            standard,
            lambda spec: ckpt_dir / spec.folder / f"{spec.name}.safetensors",
            retrain,
            work_dir / "data" / "seed_rule",
        )
    failed_paths = _move_failed(seed_rule, ckpt_dir)
    if failed_paths:
        failed_frame = _evaluate_all(failed_paths, eval_data, Protocol.STANDARD, progress)
        write_csv(failed_frame, out_dir / "results" / "eval_failed_seeds.csv")
    grid = standard + [s for s in grid if s.protocol != "standard"]
    meta |= {"eval_data": eval_data, "seed_rule": seed_rule}
    meta["reevaluated"] = {
        "command": "gvcore reproduce --reevaluate",
        "note": "the shipped checkpoints re-scored on the 20-image test split with GMSD, MS-SSIM, var_logdev",
    }
    sweep_data = meta.get("sweep_data") or ""
    if not sweep_data or not Path(sweep_data).is_dir():
        meta["sweep_data"] = _sweep_data_for_verify(meta)
    meta = _evaluate_and_write(out_dir, grid, sweep, meta, plan, progress)
    meta["reevaluated"]["wall_time_s"] = round(time.perf_counter() - t0, 1)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _label_to_name(label: str) -> str:
    """A standard-grid checkpoint label (``vdsr-lite-x2-l1-s2``) as its run/file name (``vdsr-lite-x2-l1-s2``)."""
    return label.replace("+", "-")


def _replacement(spec: RunSpec, done: dict[str, Any]) -> RunSpec:
    """``spec``, or its replacement when an earlier application of the seed rule replaced it."""
    if spec.label != done["failed"]:
        return spec
    seed = int(str(done["replaced_by"]).rsplit("-s", 1)[1])
    return dataclasses.replace(spec, seed=seed)
