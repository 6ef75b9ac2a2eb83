"""The reproduction's Markdown reports: ``summary.md`` and the GPU tier's ``summary_full.md``.

Tables of the evaluation CSVs and ``paired.csv`` (means, std over seeds, paired 95 % CIs), next to the paper's
own changes (:data:`PAPER_DELTAS`); numbers are only formatted here, never computed from images.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gvcore.data.bundled import image_group
from gvcore.protocol import Protocol

__all__ = ["PAPER_DELTAS", "PROXY_NOTE", "paired_row", "write_summary", "write_tier_summary"]

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


def _in_group(table: Any, group: str | None) -> Any:
    """Rows of the images of ``group`` (``None`` = every image)."""
    if group is None or group == "all":
        return table
    return table[table["image"].map(lambda name: image_group(str(name)) == group)]


#: metrics shown per seed (mean over images) in the tables
_SEED_COLUMNS = ("psnr", "ssim", "ms_ssim", "gmsd", "var_ratio", "var_logdev", "gv_distance")


def _per_seed(table: Any) -> Any:
    """Mean over images of each checkpoint's metrics, one row per (arch, scale, loss, seed)."""
    keys = ["arch", "scale", "loss", "seed"]
    columns = [c for c in _SEED_COLUMNS if c in table.columns]
    return _models(table).groupby(keys, sort=False)[columns].mean().reset_index()


def _mean_std(values: Any, digits: int) -> str:
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paired_row(
    paired: Any, arch: str, scale: int, protocol: str, metric: str, images: str = "natural"
) -> Any:
    """The ``paired.csv`` row of one cell and metric (``images`` falls back to ``"all"``), or ``None``."""
    at = paired[
        (paired["model"] == arch)
        & (paired["scale"] == scale)
        & (paired["protocol"] == protocol)
        & (paired["metric"] == metric)
    ]
    if "images" in at.columns:
        chosen = at[at["images"] == images]
        at = chosen if len(chosen) else at[at["images"] == "all"]
    return at.iloc[0] if len(at) else None


def _excludes_zero(row: Any) -> bool:
    return bool(
        row is not None and not math.isnan(float(row["ci_low"])) and not row["ci_low"] <= 0 <= row["ci_high"]
    )


def _ci(row: Any, digits: int) -> str:
    """``mean [low, high]`` of a paired.csv row, with a mark when the CI excludes zero."""
    if row is None:
        return ""
    if math.isnan(float(row["ci_low"])):
        return f"{row['mean_delta']:+.{digits}f}"
    mark = " *" if _excludes_zero(row) else ""
    return (
        f"{row['mean_delta']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]{mark}"
    )


def _seed_range(row: Any, digits: int) -> str:
    if row is None or math.isnan(float(row["seed_min"])):
        return "one seed"
    return f"{row['seed_min']:+.{digits}f} … {row['seed_max']:+.{digits}f}"


def _group_label(meta: dict[str, Any], group: str | None) -> str:
    return "the test images" if group is None else f"the {group} test images"


def _result_table(table: Any, paired: Any, protocol: str, group: str | None = "natural") -> list[str]:

    baseline = Protocol.parse(protocol).baseline
    images = group or "all"
    table = _in_group(table, group)
    per_seed = _per_seed(table)
    lines = [
        # The minus sign is the report's typography; the shipped summary.md and README tables quote it.
        f"| model | scale | images × seeds | {baseline} PSNR | L1 PSNR | L1+GV PSNR | ΔPSNR [95 % CI] | p "
        "| ΔPSNR per seed | ΔSSIM [95 % CI] | ΔMS-SSIM [95 % CI] | ΔGMSD [95 % CI] | Δ var ratio [95 % CI] "
        "| Δ var logdev [95 % CI] | paper ΔPSNR / ΔSSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (arch, scale), cell in per_seed.groupby(["arch", "scale"], sort=False):
        l1, gv = cell[cell["loss"] == "l1"], cell[cell["loss"] == "l1+gv"]
        base = table[(table["method"] == baseline) & (table["scale"] == scale)]["psnr"].mean()
        rows = {m: paired_row(paired, arch, scale, protocol, m, images) for m in _SEED_COLUMNS}
        psnr = rows["psnr"]
        n = f"{int(psnr['n'])} × {int(psnr['n_seeds'])}" if psnr is not None else ""
        p_value = (
            f"{float(psnr['p_value']):.2g}" if psnr is not None and not math.isnan(psnr["p_value"]) else ""
        )
        paper = PAPER_DELTAS.get((str(arch).replace("-lite", ""), int(scale)))
        paper_cell = f"{paper[0]:+.2f} / {paper[1]:+.4f}" if paper else ""
        lines.append(
            f"| {arch} | x{scale} | {n} | {base:.2f} | {_mean_std(l1['psnr'], 2)} | {_mean_std(gv['psnr'], 2)} | "
            f"{_ci(psnr, 3)} | {p_value} | {_seed_range(psnr, 2)} | {_ci(rows['ssim'], 4)} | "
            f"{_ci(rows['ms_ssim'], 4)} | {_ci(rows['gmsd'], 4)} | {_ci(rows['var_ratio'], 3)} | "
            f"{_ci(rows['var_logdev'], 3)} | {paper_cell} |"
        )
    return lines


def _method_means(table: Any, scale: int) -> dict[str, Any]:
    """Per method family at one scale: mean over images, then over seeds (``bicubic``, ``arch:loss``...)."""
    at = table[table["scale"] == scale]
    columns = [c for c in _SEED_COLUMNS if c in at.columns]
    out: dict[str, Any] = {}
    for method in ("bicubic", "bicubic+noise", "bilinear", "bilinear+noise"):
        rows = at[at["method"] == method]
        if len(rows):
            out[method] = rows[columns].mean()
    models = _models(at)
    for (arch, loss), part in models.groupby(["arch", "loss"], sort=False):
        out[f"{arch}:{loss}"] = part.groupby("seed")[columns].mean().mean()
    return out


def _observation(table: Any, group: str | None) -> list[str]:
    lines = [
        "| model | scale | HR | bicubic | bicubic+noise | L1 | L1+GV | lost variance recovered by GV |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = _in_group(table, group)
    per_seed = _per_seed(table)
    for (arch, scale), cell in per_seed.groupby(["arch", "scale"], sort=False):
        means = _method_means(table, int(scale))
        l1 = cell[cell["loss"] == "l1"]["var_ratio"]
        gv = cell[cell["loss"] == "l1+gv"]["var_ratio"]
        noise = means.get("bicubic+noise")
        recovered = (gv.mean() - l1.mean()) / (1 - l1.mean())
        lines.append(
            f"| {arch} | x{scale} | 1 | {means['bicubic']['var_ratio']:.3f} | "
            f"{noise['var_ratio']:.3f} | {_mean_std(l1, 3)} | {_mean_std(gv, 3)} | {100 * recovered:.0f} % |"
            if noise is not None
            else f"| {arch} | x{scale} | 1 | {means['bicubic']['var_ratio']:.3f} |  | {_mean_std(l1, 3)} | "
            f"{_mean_std(gv, 3)} | {100 * recovered:.0f} % |"
        )
    return lines


def _control_table(table: Any, group: str | None) -> list[str]:
    """Per scale: what each method's variance ratio comes with (the noise control shows the ratio alone misleads)."""
    lines = [
        "| scale | method | var ratio | var logdev ↓ | PSNR | SSIM | MS-SSIM | GMSD ↓ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table = _in_group(table, group)
    for scale in sorted(table["scale"].unique()):
        for method, m in _method_means(table, int(scale)).items():
            name = method.replace(":", " ")
            lines.append(
                f"| x{scale} | {name} | {m['var_ratio']:.3f} | {m['var_logdev']:.3f} | {m['psnr']:.2f} | "
                f"{m['ssim']:.4f} | {m['ms_ssim']:.4f} | {m['gmsd']:.4f} |"
            )
    return lines


def _published_table(frame: Any, group: str | None) -> list[str]:
    """Published models (``eval_published.csv``) next to HR's and the baseline's rows, means over images."""
    lines = [
        "| model | scale | trained with | scored on its training degradation | images | PSNR | Δ PSNR vs bicubic "
        "| SSIM | MS-SSIM | GMSD ↓ | var ratio | var logdev ↓ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    frame = _in_group(frame, group)
    for (scale, protocol), at in frame.groupby(["scale", "protocol"], sort=True):
        baseline = at[at["method"] == ("bicubic" if protocol == "standard" else "bilinear")]
        base_psnr = float(baseline["psnr"].mean())
        models = at[at["published"].astype(str).str.lower() == "true"]
        for method, rows in [
            *((m, at[at["method"] == m]) for m in (baseline["method"].iloc[:1])),
            *models.groupby("method", sort=False),
        ]:
            published = method in set(models["method"])
            first = rows.iloc[0]
            trained = str(first["training"]) if published else "—"
            matches = (
                ("yes" if str(first["degradation_matches"]).lower() == "true" else "**no** (blind)")
                if published
                else "—"
            )
            delta = f"{rows['psnr'].mean() - base_psnr:+.2f}" if published else ""
            lines.append(
                f"| {method} | x{scale} | {trained} | {matches} | {len(rows)} | {rows['psnr'].mean():.2f} | {delta} | "
                f"{rows['ssim'].mean():.4f} | {rows['ms_ssim'].mean():.4f} | {rows['gmsd'].mean():.4f} | "
                f"{rows['var_ratio'].mean():.3f} | {rows['var_logdev'].mean():.3f} |"
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


PROXY_NOTE = (
    "This is a **CPU-scale proxy** of the paper's experiment, not a reproduction of it: lite models (a few "
    "hundred thousand parameters or fewer), minutes of training on 2 CPU cores (about 1/9000 of the paper's "
    "training compute), 15 training images instead of DIV2K's 800, crops of 64 px, and L1 instead of the official "
    "code's MSE."
)


def write_summary(path: Path, tables: dict[str, Any], sweep: Any, paired: Any, meta: dict[str, Any]) -> None:
    """Write ``summary.md``: the results paragraph, the observation, both protocols' tables, the lambda sweeps."""
    # cycle: sentences reads this module's tables; the summary reads its generated results paragraph
    from gvcore.reproduce.sentences import results_block

    plan = meta["plan"]
    steps = ", ".join(f"{a} {n}" for a, n in plan["steps"])
    lrs = ", ".join(f"{a} {v:g}" for a, v in plan["lr"])
    grouped = meta["eval_data"] == "bundled"
    main: str | None = "natural" if grouped else None
    lines = [
        "# Bundled reproduction (a CPU-scale proxy of the paper's experiment)",
        "",
        PROXY_NOTE,
        "",
        f"Command: `{meta['command']}` — training wall time {meta['wall_time_s']:.0f} s with {meta['jobs']} jobs on "
        f"{meta['cpu_count']} CPU cores; steps {steps}; Adam with cosine decay, lr {lrs}; batch "
        f"{plan['batch_size']}, crop {plan['crop']}; "
        f"seeds {', '.join(map(str, plan['seeds']))} (standard degradation; failed seeds rerun by the rule in "
        f"`gvcore/reproduce/seeds.py`), {', '.join(map(str, plan['official_seeds']))} (official degradation); "
        f"L1+GV with λ = {meta['lambda']:g}. Test data: "
        f"{'the bundled test split (13 natural, 7 synthetic images; gvcore/data/bundled.py)' if grouped else meta['eval_data']}.",
        "",
        # The report's minus sign, as in the shipped summary.md.
        "Δ = (L1+GV) − L1 with the **image as the unit**: each method's seeds are averaged within an image, "
        "then n = images; 95 % two-level bootstrap CI (images, then seeds within an image; "
        f"{plan['bootstrap_resamples']} resamples, seed 0); p = two-sided Wilcoxon signed-rank test on the "
        "per-image differences; `*` marks a CI that excludes zero (the others are not distinguishable from zero). "
        '"ΔPSNR per seed" is the range over seed pairs (the methods\' seeds matched by rank) of the mean difference.',
        "",
        "## Results in words (generated from the CSVs)",
        "",
        *results_block(tables, paired, sweep, meta).splitlines(),
        "",
        f"## The observation: SR/HR gradient-variance ratio, standard protocol, {_group_label(meta, main)}",
        "",
        "Per image, the mean over Gx and Gy of the output's mean patch variance (p = 8, gray, Sobel) divided by "
        "HR's; mean over images (± std over seeds). 1 = as much gradient variance in total as HR — noise raises "
        "it too (bicubic+noise: Gaussian noise, σ = 0.04, on the bicubic output), so read it with the table "
        'below. "Lost variance recovered" = (L1+GV − L1) / (1 − L1).',
        "",
        *_observation(tables["standard"], main),
        "",
        f"## What the ratio comes with, standard protocol, {_group_label(meta, main)}",
        "",
        "var logdev = mean |log10(v_SR / v_HR)| over patches (0 = HR's variance in every patch; overshoot counts "
        "as much as loss); GMSD and MS-SSIM are metrics the GV loss does not optimise. Means over images and seeds.",
        "",
        *_control_table(tables["standard"], main),
    ]
    if grouped:
        lines += [
            "",
            "## The observation on the synthetic test images (reported separately)",
            "",
            *_observation(tables["standard"], "synthetic"),
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
            "raw outputs, official luma SSIM with same/symm filtering, 2-px shave); one seed, so a difference "
            "cannot be told apart from a seed effect",
        ),
    ):
        lines += [
            "",
            f"## {caption[0].upper()}{caption[1:]}; {_group_label(meta, main)}",
            "",
            "Mean over images (± std over seeds). The paper's column is its base → base+GV change on DIV2K "
            "val (official protocol, full-size models; its VDSR is trained with MSE).",
            "",
            *_result_table(tables[protocol], paired, protocol, main),
        ]
        if grouped and protocol == "standard":
            lines += [
                "",
                "Synthetic test images:",
                "",
                *_result_table(tables[protocol], paired, protocol, "synthetic"),
            ]
    if "published" in tables:
        lines += [
            "",
            f"## Published models, standard protocol, {_group_label(meta, main)}",
            "",
            "Trained by their authors on other data (DIV2K) and for far longer than anything here, so they are "
            "not comparable with the tables above as training recipes; they show whether the observation holds "
            "for models people use. Scored through the same `gvcore.eval.scoring` path, each under the degradation "
            "it was trained for; a row marked **no** was trained on a blind degradation and is scored on bicubic LR "
            "(`gvcore/zoo/registry.py`, `assets/checkpoints/published/NOTICE`).",
            "",
            *_published_table(tables["published"], main),
        ]
    holdout = ", ".join(plan["sweep_holdout"])
    lines += [
        "",
        f"## λ sweeps ({plan['sweep_preset']}, standard protocol, seeds {', '.join(map(str, plan['sweep_seeds']))}, "
        f"n = {len(plan['sweep_holdout'])} train images held out of the sweeps' training: {holdout})",
        "",
        *_sweep_lines(sweep),
        "",
        f"Shipped λ = {meta['lambda']:g}: {meta['lambda_reason']}.",
        "",
    ]
    path.write_text("\n".join(lines))


def write_tier_summary(path: Path, table: Any, paired: Any, meta: dict[str, Any]) -> None:
    """``summary_full.md`` of the GPU tier (:mod:`gvcore.reproduce.full`): its own table, standard protocol."""
    steps = ", ".join(f"{k} {v}" for k, v in meta["steps"].items())
    lines = [
        "# Full-size tier (GPU)",
        "",
        f"Command: `{meta['command']}` on {meta['device']} — wall time {meta['wall_time_s']:.0f} s; steps {steps} "
        f"(from a measured time budget of {meta['plan']['budget_s']:g} s per run); batch "
        f"{meta['plan']['batch_size']}, crop {meta['plan']['crop']}, Adam + cosine, seed {meta['plan']['seed']}; "
        f"L1+GV with λ = {meta['lambda']:g}. Trained on the bundled train split (MATLAB-bicubic LR), scored on "
        "the bundled test split under the standard protocol on CPU (`gvcore.reproduce.full.evaluate_full`).",
        "",
        "One seed: n = test images; Δ and 95 % CI as in `summary.md`.",
        "",
        *_result_table(table, paired, "standard", None),
        "",
    ]
    path.write_text("\n".join(lines))
