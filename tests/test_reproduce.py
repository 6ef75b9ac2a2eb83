"""The bundled reproduction: CI's few-step smoke of the whole pipeline, and the shipped tables re-checked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gvcore.evaluate import EVAL_COLUMNS
from gvcore.reproduce import choose_lambda, reproduce, verify

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets"


def test_smoke_pipeline(tmp_path: Path) -> None:
    meta = reproduce(out=tmp_path / "assets", work=tmp_path / "work", smoke=True, jobs=1, progress=False)
    results, ckpts = tmp_path / "assets" / "results", tmp_path / "assets" / "checkpoints"
    for name in (
        "eval_standard.csv",
        "eval_official.csv",
        "lambda_sweep.csv",
        "summary.md",
        "reproduce_meta.json",
    ):
        assert (results / name).is_file(), name
    assert len(list(ckpts.glob("*.safetensors"))) == 3 * 2 * 2 + 2 * len(meta["plan"]["extra_seeds"])
    table = pd.read_csv(results / "eval_standard.csv")
    assert tuple(table.columns) == EVAL_COLUMNS
    assert {"HR", "bicubic", "espcn-x2-l1-s0", "espcn-x2-l1+gv-s1", "vdsr-lite-x4-l1+gv-s0"} <= set(
        table["method"]
    )
    sweep = pd.read_csv(results / "lambda_sweep.csv")
    assert list(sweep.columns[:4]) == ["lambda", "psnr", "ssim", "var_ratio"] and sweep["lambda"].iloc[0] == 0
    assert meta["lambda"] in set(sweep["lambda"])
    summary = (results / "summary.md").read_text()
    assert "## The observation" in summary and "± " in summary  # the extra-seed configuration has a spread
    assert json.loads((results / "reproduce_meta.json").read_text())["checkpoints"]
    report = verify(tmp_path / "assets")
    assert report.ok, report.message


def test_choose_lambda() -> None:
    sweep = pd.DataFrame(
        {"lambda": [0, 0.01, 0.1, 1], "psnr": [30.0, 30.01, 29.97, 29.5], "var_ratio": [0.5, 0.52, 0.6, 0.9]}
    )
    assert choose_lambda(sweep, tolerance=0.05)[0] == 0.1
    assert choose_lambda(sweep, tolerance=1.0)[0] == 1


@pytest.mark.skipif(
    not (SHIPPED / "results" / "reproduce_meta.json").is_file(), reason="no shipped reproduction"
)
def test_shipped_tables_reproduce() -> None:
    """`gvcore eval` on the shipped checkpoints gives the shipped tables (ESPCN x2 subset, both protocols)."""
    methods = ["espcn-x2-l1-s0", "espcn-x2-l1+gv-s0"]
    report = verify(SHIPPED, methods=methods)
    assert report.ok, report.message
