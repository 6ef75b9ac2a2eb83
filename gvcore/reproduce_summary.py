"""The reproduction's Markdown reports: ``summary.md`` and the GPU tier's ``summary_full.md``.

Tables of the evaluation CSVs and ``paired.csv`` (means, std over seeds, paired 95 % CIs), next to the paper's
own changes (:data:`PAPER_DELTAS`); numbers are only formatted here, never computed from images.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["PAPER_DELTAS", "write_summary", "write_tier_summary"]

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
