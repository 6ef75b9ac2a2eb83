"""Paired statistics: is the change from method A to method B distinguishable from zero?

Two methods scored on the same units (an image under a seed) give paired differences ``d = B - A``. We report
their mean, a percentile bootstrap 95 % confidence interval of the mean (resampling the pairs with a seeded
generator) and the two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``). A CI that contains
zero means the change is *not distinguishable from zero* on these data.

:func:`paired_table` builds ``assets/results/paired.csv`` from evaluation tables: L1+GV minus L1 per
(model, scale, protocol, metric), paired by (image, seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gvcore._validation import check_positive_int

__all__ = ["PAIRED_COLUMNS", "PAIRED_METRICS", "PairedResult", "paired_statistics", "paired_table"]

#: columns of ``paired.csv``.
PAIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "scale",
    "protocol",
    "metric",
    "n",
    "mean_delta",
    "ci_low",
    "ci_high",
    "p_value",
)
#: metrics compared by :func:`paired_table`.
PAIRED_METRICS: tuple[str, ...] = ("psnr", "ssim", "var_ratio", "gv_distance")


@dataclass(frozen=True)
class PairedResult:
    """Mean paired difference with its bootstrap CI and Wilcoxon p-value."""

    n: int
    mean_delta: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def distinguishable(self) -> bool:
        """``True`` when the CI excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


def paired_statistics(
    deltas: Sequence[float] | np.ndarray,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Mean of paired differences, its percentile bootstrap CI and the Wilcoxon signed-rank p-value.

    Args:
        deltas: paired differences ``B - A`` (one per unit); NaN entries are an error.
        resamples: bootstrap resamples (>= 1000).
        confidence: CI level in (0, 1).
        seed: bootstrap generator seed (the result is deterministic).

    Returns:
        :class:`PairedResult`. With all differences zero the p-value is 1; with fewer than 2 units the CI
        and p-value are NaN.

    Example:
        >>> r = paired_statistics([0.1, 0.2, 0.15, 0.12, 0.3, 0.05])
        >>> r.n, round(r.mean_delta, 4), r.ci_low > 0, r.p_value < 0.05
        (6, 0.1533, True, True)
    """
    d = np.asarray(deltas, dtype=np.float64).ravel()
    check_positive_int("resamples", resamples, minimum=1000)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    if np.isnan(d).any():
        raise ValueError(f"deltas contain NaN ({int(np.isnan(d).sum())} of {d.size})")
    n = int(d.size)
    if n == 0:
        raise ValueError("deltas is empty: nothing to compare")
    mean = float(d.mean())
    if n < 2:
        return PairedResult(n, mean, math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # bounded memory for large n
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    if np.all(d == 0):
        p = 1.0
    else:
        from scipy.stats import wilcoxon

        p = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedResult(n, mean, float(low), float(high), p)


def paired_table(
    frame: Any,
    base_loss: str = "l1",
    treated_loss: str = "l1+gv",
    metrics: Sequence[str] = PAIRED_METRICS,
    resamples: int = 10_000,
    seed: int = 0,
) -> Any:
    """Paired statistics of ``treated_loss - base_loss`` for every model and scale of evaluation tables.

    Args:
        frame: evaluation rows (:data:`gvcore.evaluation.EVAL_COLUMNS`), one or several protocols.
        base_loss: the ``loss`` value of the baseline rows.
        treated_loss: the ``loss`` value of the treated rows (differences are treated minus base).
        metrics: columns compared (higher is better for psnr, ssim; var_ratio is better nearer 1; gv_distance
            lower is better: the table reports raw differences, signs are read by the reader).
        resamples: bootstrap resamples per confidence interval.
        seed: bootstrap random seed.

    Returns:
        ``pandas.DataFrame`` with :data:`PAIRED_COLUMNS`, pairs matched on (arch, scale, protocol, image, seed).
    """
    import pandas as pd

    keys = ["arch", "scale", "protocol", "image", "seed"]
    rows = frame[frame["loss"].isin([base_loss, treated_loss])]
    base = rows[rows["loss"] == base_loss].set_index(keys)
    treated = rows[rows["loss"] == treated_loss].set_index(keys)
    common = base.index.intersection(treated.index)
    records = []
    for (arch, scale, protocol), _ in (
        pd.DataFrame(index=common).reset_index().groupby(["arch", "scale", "protocol"], sort=False)
    ):
        index = [k for k in common if k[:3] == (arch, scale, protocol)]
        for metric in metrics:
            deltas = treated.loc[index, metric].to_numpy(float) - base.loc[index, metric].to_numpy(float)
            result = paired_statistics(deltas, resamples=resamples, seed=seed)
            records.append(
                {"model": arch, "scale": int(scale), "protocol": protocol, "metric": metric, **asdict(result)}
            )
    return pd.DataFrame(records, columns=list(PAIRED_COLUMNS))
