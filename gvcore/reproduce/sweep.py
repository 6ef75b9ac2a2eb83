"""The lambda sweep's table (paired deltas against lambda = 0, 95 % CIs) and the choice of the shipped lambda.

The sweep runs are scored on train images held out of their training (:mod:`gvcore.reproduce.run`, step 2);
:func:`choose_lambda` picks the lambda the sweep supports (``lambda_sweep.csv``, ``summary.md``).
"""

from __future__ import annotations

import math
from typing import Any

from gvcore.eval.stats import paired_statistics
from gvcore.reproduce.plan import RunSpec

__all__ = ["choose_lambda"]


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


def _sweep_table(frame: Any, specs: list[RunSpec], resamples: int) -> Any:
    """Per (scale, lambda): mean metrics over images and seeds, and paired deltas vs lambda = 0 with 95 % CIs."""
    import pandas as pd

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
