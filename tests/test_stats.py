"""Paired statistics (gvcore.eval.stats): bootstrap CI, Wilcoxon p, and paired.csv from evaluation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from gvcore.eval.stats import PAIRED_COLUMNS, image_level_statistics, paired_statistics, paired_table


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


def _rows(images: tuple[str, ...], seeds: dict[str, tuple[int, ...]], bump: dict[int, float]) -> list[dict]:
    rows = []
    for loss, loss_seeds in seeds.items():
        for seed in loss_seeds:
            for k, image in enumerate(images):
                delta = bump.get(seed, 0.1) if loss == "l1+gv" else 0.0
                rows.append(
                    {
                        "arch": "espcn",
                        "scale": 2,
                        "protocol": "standard",
                        "image": image,
                        "seed": seed,
                        "loss": loss,
                        "psnr": 30.0 + delta + 0.5 * k,
                        "ssim": 0.9,
                        "var_ratio": 0.5 + delta,
                        "gv_distance": 0.1 - delta / 10,
                    }
                )
    return rows


def test_paired_table_has_the_image_as_its_unit() -> None:
    """The unit is the image (not image x seed): mean_delta = mean over images of the seed-averaged difference."""
    rows = _rows(("a", "b"), {"l1": (0, 1, 2), "l1+gv": (0, 1, 2)}, {0: 0.10, 1: 0.11, 2: 0.12})
    rows.append({"arch": "", "scale": 2, "protocol": "standard", "image": "a", "seed": None, "loss": ""})
    table = paired_table(pd.DataFrame(rows), resamples=1000)
    assert tuple(table.columns) == PAIRED_COLUMNS
    psnr = table[table["metric"] == "psnr"].iloc[0]
    assert (psnr["n"], psnr["n_seeds"], psnr["images"]) == (2, 3, "all")
    assert psnr["mean_delta"] == pytest.approx(0.11)
    assert (psnr["seed_min"], psnr["seed_max"]) == (pytest.approx(0.10), pytest.approx(0.12))
    assert table[table["metric"] == "ssim"].iloc[0]["mean_delta"] == 0.0
    assert set(table["metric"]) == {"psnr", "ssim", "var_ratio", "gv_distance"}  # absent metrics are skipped


def test_paired_table_averages_seeds_that_differ_between_arms_and_reports_groups() -> None:
    """A rerun seed (L1 under 0, 1, 3; L1+GV under 0, 1, 2) still pairs by image; groups get their own rows."""
    images = ("a", "b", "c", "d")
    rows = _rows(images, {"l1": (0, 1, 3), "l1+gv": (0, 1, 2)}, {0: 0.0, 1: 0.3, 2: 0.6})
    groups = {"a": "natural", "b": "natural", "c": "synthetic", "d": "synthetic"}
    table = paired_table(pd.DataFrame(rows), resamples=1000, groups=groups)
    psnr = table[table["metric"] == "psnr"].set_index("images")
    assert list(psnr.index) == ["all", "natural", "synthetic"]
    assert list(psnr["n"]) == [4, 2, 2]
    assert psnr.loc["all", "mean_delta"] == pytest.approx(0.3)
    assert psnr.loc["all", "seed_min"] == pytest.approx(0.0)
    assert psnr.loc["all", "seed_max"] == pytest.approx(0.6)
    # the CI carries the seed spread: resampling seeds within images widens it beyond a constant shift's zero width
    assert psnr.loc["all", "ci_low"] < 0.3 < psnr.loc["all", "ci_high"]


def test_image_level_statistics_refuses_ragged_or_nan_input() -> None:
    with pytest.raises(ValueError, match="same n_images"):
        image_level_statistics(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        image_level_statistics(np.array([[1.0, np.nan]]), np.ones((1, 2)))


def test_image_level_statistics_with_one_seed_is_the_image_bootstrap() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(30, 1, (12, 1))
    treated = base + rng.normal(0.1, 0.05, (12, 1))
    two_level = image_level_statistics(base, treated, resamples=2000, seed=5)
    plain = paired_statistics((treated - base)[:, 0], resamples=2000, seed=5)
    assert (two_level.n, two_level.n_seeds) == (12, 1)
    assert two_level.mean_delta == pytest.approx(plain.mean_delta)
    assert two_level.p_value == pytest.approx(plain.p_value)
    assert np.isnan(two_level.seed_min)


def test_paired_table_of_checkpoints_without_a_seed_counts_one_seed() -> None:
    """A user's own two checkpoints (no seed in their metadata): n = images, n_seeds = 1, no seed range."""
    rows = _rows(("a", "b", "c"), {"l1": (0,), "l1+gv": (0,)}, {0: 0.2})
    for row in rows:
        row["seed"] = None
    table = paired_table(pd.DataFrame(rows), resamples=1000)
    psnr = table[table["metric"] == "psnr"].iloc[0]
    assert (psnr["n"], psnr["n_seeds"]) == (3, 1)
    assert psnr["mean_delta"] == pytest.approx(0.2)
    assert np.isnan(psnr["seed_min"])
