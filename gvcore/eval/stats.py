"""Paired statistics: is the change from method A to method B distinguishable from zero?

**The image is the unit.** Two methods scored on the same images give one paired difference per image. When a
method was trained under several seeds, its scores are first averaged over its seeds *within each image*; the
differences ``d_i = mean_seeds(B)_i - mean_seeds(A)_i`` are then one per image, so ``n`` is the number of images
(never images x seeds, which would count the same image several times and make CIs too narrow).

:func:`paired_statistics` takes such per-image differences: their mean, a percentile bootstrap 95 % CI of the mean
(resampling images with a seeded generator) and the two-sided Wilcoxon signed-rank p-value
(``scipy.stats.wilcoxon``). :func:`image_level_statistics` takes the per-seed scores themselves and resamples at
two levels -- images, then each method's seeds within an image -- so that the CI also carries the spread between
seeds; its Wilcoxon test is on the per-image seed means. A CI that contains zero means the change is *not
distinguishable from zero* on these data. With one seed per method a difference cannot be told apart from a seed
effect: ``n_seeds`` says how many seeds there were, and the readers of these tables say so.

:func:`paired_table` builds ``assets/results/paired.csv`` from evaluation tables: L1+GV minus L1 per
(model, scale, protocol, metric) and image group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gvcore._validation import check_positive_int

__all__ = [
    "PAIRED_COLUMNS",
    "PAIRED_METRICS",
    "PairedResult",
    "image_level_statistics",
    "paired_statistics",
    "paired_table",
]

#: columns of ``paired.csv``.
PAIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "scale",
    "protocol",
    "images",
    "metric",
    "n",
    "n_seeds",
    "mean_delta",
    "ci_low",
    "ci_high",
    "p_value",
    "seed_min",
    "seed_max",
)
#: metrics compared by :func:`paired_table` (those missing from a table are skipped).
PAIRED_METRICS: tuple[str, ...] = (
    "psnr",
    "ssim",
    "ms_ssim",
    "gmsd",
    "var_ratio",
    "var_logdev",
    "gv_distance",
)


@dataclass(frozen=True)
class PairedResult:
    """Mean paired difference with its bootstrap CI and Wilcoxon p-value.

    ``n`` counts the units (images); ``n_seeds`` the seeds per method behind each unit (the smaller of the two);
    ``seed_min``/``seed_max`` the smallest and largest mean difference of one seed pair (the methods' seeds
    matched by rank; NaN with one seed), which shows whether one seed drives the mean.
    """

    n: int
    mean_delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int = 1
    seed_min: float = math.nan
    seed_max: float = math.nan

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
    _check_bootstrap(resamples, confidence)
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
    return PairedResult(n, mean, float(low), float(high), _wilcoxon_p(d))


def _check_bootstrap(resamples: int, confidence: float) -> None:
    check_positive_int("resamples", resamples, minimum=1000)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")


def _wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``d`` (>= 2 values); 1 when every difference is zero."""
    if np.all(d == 0):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def image_level_statistics(
    base: np.ndarray,
    treated: np.ndarray,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Statistics of ``treated - base`` with the image as the unit, from per-seed scores.

    Args:
        base: ``(n_images, n_seeds_base)`` scores of the reference method (one column per seed).
        treated: ``(n_images, n_seeds_treated)`` scores of the treated method, images in the same order.
        resamples: bootstrap resamples (>= 1000).
        confidence: CI level in (0, 1).
        seed: bootstrap generator seed.

    Returns:
        :class:`PairedResult` with ``n`` = images, the mean over images of the seed-averaged difference, a
        two-level bootstrap CI (images, then seeds within each image and method), the Wilcoxon p-value of the
        per-image differences, ``n_seeds`` and the per-seed range.

    Example:
        >>> base = np.array([[30.0, 30.2], [28.0, 28.1], [31.0, 31.1], [29.0, 29.0]])
        >>> r = image_level_statistics(base, base + 0.1, resamples=1000)
        >>> r.n, r.n_seeds, round(r.mean_delta, 6), round(r.seed_min, 6), round(r.seed_max, 6)
        (4, 2, 0.1, 0.1, 0.1)
    """
    a, b = np.asarray(base, dtype=np.float64), np.asarray(treated, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or 0 in a.shape or 0 in b.shape:
        raise ValueError(
            f"base and treated must be (n_images, n_seeds) with the same n_images >= 1; got {a.shape}, {b.shape}"
        )
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("base/treated contain NaN: every image needs a score under every seed")
    _check_bootstrap(resamples, confidence)
    per_image = b.mean(axis=1) - a.mean(axis=1)
    mean = float(per_image.mean())
    n, seeds = a.shape[0], min(a.shape[1], b.shape[1])
    pairs = [float((b[:, k] - a[:, k]).mean()) for k in range(seeds)] if seeds > 1 else []
    seed_min, seed_max = (min(pairs), max(pairs)) if pairs else (math.nan, math.nan)
    if n < 2:
        return PairedResult(n, mean, math.nan, math.nan, math.nan, seeds, seed_min, seed_max)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 500_000 // (n * max(a.shape[1], b.shape[1])))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        images = rng.integers(0, n, size=(stop - start, n))
        picks_a = rng.integers(0, a.shape[1], size=(stop - start, n, a.shape[1]))
        picks_b = rng.integers(0, b.shape[1], size=(stop - start, n, b.shape[1]))
        mean_a = np.take_along_axis(a[images], picks_a, axis=2).mean(axis=2)
        mean_b = np.take_along_axis(b[images], picks_b, axis=2).mean(axis=2)
        means[start:stop] = (mean_b - mean_a).mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return PairedResult(n, mean, float(low), float(high), _wilcoxon_p(per_image), seeds, seed_min, seed_max)


def paired_table(
    frame: Any,
    base_loss: str = "l1",
    treated_loss: str = "l1+gv",
    metrics: Sequence[str] = PAIRED_METRICS,
    resamples: int = 10_000,
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
) -> Any:
    """Image-level statistics of ``treated_loss - base_loss`` for every model, scale and protocol.

    Args:
        frame: evaluation rows (:data:`gvcore.eval.evaluate.EVAL_COLUMNS`), one or several protocols.
        base_loss: the ``loss`` value of the baseline rows.
        treated_loss: the ``loss`` value of the treated rows (differences are treated minus base).
        metrics: columns compared (those absent from ``frame`` are skipped). psnr, ssim, ms_ssim are higher-is-
            better; gmsd, var_logdev and gv_distance lower-is-better; var_ratio is better nearer 1. The table
            reports raw differences; signs are read by the reader.
        resamples: bootstrap resamples per confidence interval.
        seed: bootstrap random seed.
        groups: image name -> group (e.g. :data:`gvcore.data.bundled.TEST_GROUPS`); each group with 2 or more images
            gets its own rows besides ``"all"``.

    Returns:
        ``pandas.DataFrame`` with :data:`PAIRED_COLUMNS`: per (model, scale, protocol, images, metric),
        :func:`image_level_statistics` over the images scored under both losses, each method's seeds averaged
        within an image (``n`` = images, ``n_seeds`` = seeds per method).
    """
    import pandas as pd

    rows = frame[frame["loss"].isin([base_loss, treated_loss])]
    rows = rows.assign(
        seed=rows["seed"].astype("float64").fillna(-1.0)
    )  # a checkpoint without a seed: one seed
    present = [m for m in metrics if m in rows.columns]
    records = []
    for (arch, scale, protocol), cell in rows.groupby(["arch", "scale", "protocol"], sort=False):
        wide = {
            loss: part.pivot_table(
                index="image", columns="seed", values=present, aggfunc="mean", dropna=False
            )
            for loss, part in cell.groupby("loss")
        }
        if set(wide) != {base_loss, treated_loss}:
            continue
        images = wide[base_loss].index.intersection(wide[treated_loss].index)
        subsets = {"all": list(images)}
        for name in sorted(set((groups or {}).values())):
            members = [i for i in images if (groups or {}).get(i) == name]
            if len(members) >= 2 and len(members) < len(images):
                subsets[name] = members
        for subset, members in subsets.items():
            for metric in present:
                base = wide[base_loss].loc[members, metric].to_numpy(float)
                treated = wide[treated_loss].loc[members, metric].to_numpy(float)
                if np.isnan(base).any() or np.isnan(treated).any():
                    continue  # not scored on every image (e.g. ms_ssim on images too small for it): no row
                result = image_level_statistics(base, treated, resamples=resamples, seed=seed)
                records.append(
                    {
                        "model": arch,
                        "scale": int(scale),
                        "protocol": protocol,
                        "images": subset,
                        "metric": metric,
                    }
                    | asdict(result)
                )
    return pd.DataFrame(records, columns=list(PAIRED_COLUMNS))
