"""The bundled reproduction: CI's few-step smoke of the whole pipeline, and the shipped assets re-checked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gvcore.eval.evaluate import EVAL_COLUMNS
from gvcore.eval.stats import PAIRED_COLUMNS
from gvcore.reproduce.run import choose_lambda, reproduce, verify

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets"
HAS_SHIPPED = (SHIPPED / "results" / "paired.csv").is_file()


@pytest.mark.slow
def test_smoke_pipeline(tmp_path: Path) -> None:
    meta = reproduce(out=tmp_path / "assets", work=tmp_path / "work", smoke=True, jobs=1, progress=False)
    results, ckpts = tmp_path / "assets" / "results", tmp_path / "assets" / "checkpoints"
    for name in (
        "eval_standard.csv",
        "eval_official.csv",
        "eval_sweep.csv",
        "lambda_sweep.csv",
        "paired.csv",
        "summary.md",
        "reproduce_meta.json",
    ):
        assert (results / name).is_file(), name
    plan = meta["plan"]
    grid = len(plan["presets"]) * len(plan["scales"]) * 2
    assert len(list(ckpts.glob("*.safetensors"))) == grid * len(plan["seeds"])
    assert len(list((ckpts / "official").glob("*.safetensors"))) == (
        len(plan["official_presets"]) * len(plan["scales"]) * 2 * len(plan["official_seeds"])
    )
    sweep_files = list((ckpts / "sweep").glob("*.safetensors"))
    assert len(sweep_files) == len(plan["sweep_scales"]) * (1 + len(plan["sweep_lambdas"]))
    standard = pd.read_csv(results / "eval_standard.csv")
    official = pd.read_csv(results / "eval_official.csv")
    assert tuple(standard.columns) == EVAL_COLUMNS
    assert {"HR", "bicubic", "espcn-x2-l1-s0", "espcn-x2-l1+gv-s1", "vdsr-lite-x4-l1+gv-s0"} <= set(
        standard["method"]
    )
    # no table mixes degradations: the official table scores the official-degradation models only
    assert {"HR", "bilinear", "espcn-x2-l1 official-s0"} <= set(official["method"])
    assert not official["method"].str.endswith("-s1").any()
    assert "bicubic" not in set(official["method"])
    paired = pd.read_csv(results / "paired.csv")
    assert tuple(paired.columns) == PAIRED_COLUMNS
    # ms_ssim is NaN on the smoke's 96-px crops (below its 161-px minimum), so it has no paired rows
    assert set(paired["metric"]) == {"psnr", "ssim", "gmsd", "var_ratio", "var_logdev", "gv_distance"}
    standard_paired = paired[paired["protocol"] == "standard"]
    assert (standard_paired["n"] == standard["image"].nunique()).all()  # the image is the unit
    assert (standard_paired["n_seeds"] == len(plan["seeds"])).all()
    assert "bicubic+noise" in set(standard["method"])
    assert "bilinear+noise" in set(official["method"])
    assert meta["seed_rule"]["replaced"] == []  # two smoke seeds: no cell the rule can judge
    sweep = pd.read_csv(results / "lambda_sweep.csv")
    assert {"scale", "lambda", "psnr", "ssim", "var_ratio", "gv_distance", "d_psnr_ci_low"} <= set(
        sweep.columns
    )
    assert set(sweep["scale"]) == set(plan["sweep_scales"])
    assert meta["lambda"] in set(sweep["lambda"])
    summary = (results / "summary.md").read_text()
    assert "## The observation" in summary
    assert "95 % CI" in summary
    assert "± " in summary
    assert json.loads((results / "reproduce_meta.json").read_text())["checkpoints"]
    report = verify(tmp_path / "assets")
    assert report.ok, report.message


def test_choose_lambda_needs_every_scale_within_tolerance() -> None:
    sweep = pd.DataFrame(
        {
            "scale": [2] * 4 + [4] * 4,
            "lambda": [0, 0.01, 0.1, 1] * 2,
            "psnr": [30.0, 30.01, 29.97, 29.5, 26.0, 26.0, 25.9, 25.0],
            "var_ratio": [0.5, 0.52, 0.6, 0.9, 0.3, 0.31, 0.4, 0.7],
        }
    )
    assert choose_lambda(sweep, tolerance=0.05)[0] == 0.01  # 0.1 costs 0.1 dB at x4
    assert choose_lambda(sweep, tolerance=0.2)[0] == 0.1
    assert choose_lambda(sweep, tolerance=2.0)[0] == 1
    one_scale = sweep[sweep["scale"] == 2].drop(columns="scale")
    assert choose_lambda(one_scale, tolerance=0.05)[0] == 0.1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SHIPPED, reason="no shipped reproduction")
def test_shipped_tables_reproduce() -> None:
    """`gvcore eval` on shipped checkpoints gives the shipped tables (an ESPCN subset of each table)."""
    meta = json.loads((SHIPPED / "results" / "reproduce_meta.json").read_text())
    methods = [m for m in meta["checkpoints"] if m.startswith("espcn-x2-") and m.endswith("-s0")]
    report = verify(SHIPPED, methods=methods)
    assert report.ok, report.message


@pytest.mark.skipif(not HAS_SHIPPED, reason="no shipped reproduction")
def test_shipped_l1_checkpoints_beat_bicubic_on_natural_images() -> None:
    """What docs/results.md's "Over bicubic" sentence says, checked per checkpoint (not per seed mean)."""
    from gvcore.data.bundled import image_group

    table = pd.read_csv(SHIPPED / "results" / "eval_standard.csv")
    table = table[table["image"].map(image_group) == "natural"]
    for scale, at in table.groupby("scale"):
        bicubic = at[at["method"] == "bicubic"]["psnr"].mean()
        l1 = at[at["loss"] == "l1"].groupby("method")["psnr"].mean()
        assert len(l1) == 9
        assert (l1 > bicubic).all(), f"x{scale}: {(l1 - bicubic).round(3).to_dict()}"


@pytest.mark.skipif(not HAS_SHIPPED, reason="no shipped reproduction")
def test_shipped_paired_statistics_have_the_image_as_their_unit() -> None:
    """The unit is the image: n = distinct test images in every cell; mean_delta = mean over images of the seed-averaged difference."""
    from gvcore.data.bundled import image_group

    paired = pd.read_csv(SHIPPED / "results" / "paired.csv")
    assert tuple(paired.columns) == PAIRED_COLUMNS
    assert ((paired["ci_low"] <= paired["mean_delta"]) & (paired["mean_delta"] <= paired["ci_high"])).all()
    for protocol in ("standard", "official"):
        table = pd.read_csv(SHIPPED / "results" / f"eval_{protocol}.csv")
        models = table[table["loss"].isin(["l1", "l1+gv"])]
        for row in paired[paired["protocol"] == protocol].to_dict("records"):
            cell = models[(models["arch"] == row["model"]) & (models["scale"] == row["scale"])]
            if row["images"] != "all":
                cell = cell[cell["image"].map(image_group) == row["images"]]
            assert row["n"] == cell["image"].nunique(), row
            per_image = cell.groupby(["image", "loss"])[row["metric"]].mean().unstack("loss")
            expected = (per_image["l1+gv"] - per_image["l1"]).mean()
            # Both CSVs hold 10 significant digits (write_csv's %.10g): each score is off by up to 5e-10 of its
            # size, so a difference of means by up to twice that of the largest score, plus mean_delta's own
            # rounding. (A tolerance relative to the delta alone failed: 3.3e-9 on a +0.068 dB delta of ~30 dB.)
            bound = 2 * 5e-10 * float(cell[row["metric"]].abs().max()) + 5e-10 * abs(expected)
            assert abs(row["mean_delta"] - expected) <= bound, row
    standard = paired[paired["protocol"] == "standard"]
    assert set(standard["images"]) == {"all", "natural", "synthetic"}
    assert (standard[standard["images"] == "all"]["n"] == 20).all()
    assert (standard["n_seeds"] == 3).all()


@pytest.mark.skipif(not HAS_SHIPPED, reason="no shipped reproduction")
def test_shipped_tables_carry_metrics_the_loss_does_not_optimise_and_the_noise_control() -> None:
    for protocol, baseline in (("standard", "bicubic"), ("official", "bilinear")):
        table = pd.read_csv(SHIPPED / "results" / f"eval_{protocol}.csv")
        scored = table[table["method"] != "HR"]
        for column in ("gmsd", "ms_ssim", "var_logdev"):
            assert scored[column].notna().all(), column
            assert (scored[column].abs() < float("inf")).all(), column
        assert f"{baseline}+noise" in set(table["method"])
    summary = (SHIPPED / "results" / "summary.md").read_text()
    assert "bicubic+noise" in summary


@pytest.mark.skipif(not HAS_SHIPPED, reason="no shipped reproduction")
def test_shipped_sweeps_cover_every_lambda() -> None:
    from gvcore.checkpoint.store import load_model

    sweep = sorted((SHIPPED / "checkpoints" / "sweep").glob("*.safetensors"))
    weights = {}
    for path in sweep:
        _, meta = load_model(path)
        weights.setdefault(meta["scale"], set()).add(float(meta["loss"]["gv_weight"]))
    for scale in (2, 4):
        assert {0.0, 0.01, 0.03, 0.1, 0.3, 1.0} <= weights[scale]
