"""Paired statistics (gvcore.stats): bootstrap CI, Wilcoxon p, and paired.csv from evaluation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from gvcore.stats import PAIRED_COLUMNS, paired_statistics, paired_table


def test_ci_brackets_the_mean_and_is_deterministic() -> None:
    d = np.random.default_rng(3).normal(0.05, 0.1, 24)
    a, b = paired_statistics(d), paired_statistics(d)
    assert a == b
    assert a.n == 24
    assert a.ci_low < a.mean_delta < a.ci_high
    assert a.mean_delta == pytest.approx(d.mean())
    assert a.p_value == pytest.approx(wilcoxon(d).pvalue)


def test_ci_matches_a_plain_bootstrap() -> None:
    """Percentile bootstrap of the mean, re-derived with a loop over the same generator draws."""
    d = np.random.default_rng(5).normal(0.0, 1.0, 10)
    got = paired_statistics(d, resamples=2000, seed=7)
    rng = np.random.default_rng(7)
    means = [d[rng.integers(0, d.size, size=d.size)].mean() for _ in range(2000)]
    low, high = np.quantile(means, [0.025, 0.975])
    assert got.ci_low == pytest.approx(low, abs=1e-12)
    assert got.ci_high == pytest.approx(high, abs=1e-12)


def test_clear_effects_and_null_effects() -> None:
    assert paired_statistics([0.1, 0.2, 0.15, 0.12, 0.3, 0.05, 0.2, 0.1]).distinguishable
    null = paired_statistics(np.random.default_rng(0).normal(0, 1, 30))
    assert null.ci_low < 0 < null.ci_high
    assert not null.distinguishable
    zeros = paired_statistics([0.0, 0.0, 0.0])
    assert zeros.p_value == 1.0
    assert zeros.mean_delta == 0.0


@pytest.mark.parametrize(
    ("deltas", "kwargs", "match"),
    [
        ([], {}, "empty"),
        ([0.1, float("nan")], {}, "NaN"),
        ([0.1, 0.2], {"resamples": 10}, "resamples"),
        ([0.1, 0.2], {"confidence": 1.5}, "confidence"),
    ],
)
def test_bad_input(deltas: list[float], kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        paired_statistics(deltas, **kwargs)


def test_single_pair_has_no_interval() -> None:
    r = paired_statistics([0.3])
    assert r.n == 1
    assert r.mean_delta == 0.3
    assert np.isnan(r.ci_low)
    assert np.isnan(r.p_value)


def test_paired_table_pairs_by_image_and_seed() -> None:
    rows = []
    for seed in (0, 1, 2):
        for image in ("a", "b"):
            for loss, bump in (("l1", 0.0), ("l1+gv", 0.1 + 0.01 * seed)):
                rows.append(
                    {
                        "arch": "espcn",
                        "scale": 2,
                        "protocol": "standard",
                        "image": image,
                        "seed": seed,
                        "loss": loss,
                        "psnr": 30.0 + bump + (0.5 if image == "b" else 0.0),
                        "ssim": 0.9,
                        "var_ratio": 0.5 + bump,
                        "gv_distance": 0.1 - bump / 10,
                    }
                )
    rows.append({"arch": "", "scale": 2, "protocol": "standard", "image": "a", "seed": None, "loss": ""})
    table = paired_table(pd.DataFrame(rows), resamples=1000)
    assert tuple(table.columns) == PAIRED_COLUMNS
    psnr = table[table["metric"] == "psnr"].iloc[0]
    assert psnr["n"] == 6
    assert psnr["mean_delta"] == pytest.approx(0.11)
    assert table[table["metric"] == "ssim"].iloc[0]["mean_delta"] == 0.0
