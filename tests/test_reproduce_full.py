"""The GPU tier's pipeline (gvcore.reproduce.full) end to end on CPU with a tiny budget: train, export, score."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gvcore.checkpoint.store import load_model
from gvcore.reproduce.full import FULL_PLAN, evaluate_full, train_full


@pytest.mark.slow
def test_train_export_and_score(tmp_path: Path) -> None:
    plan = dataclasses.replace(
        FULL_PLAN,
        presets=("vdsr",),
        scales=(2,),
        budget_s=0.1,
        probe_steps=1,
        batch_size=1,
        crop=16,
        max_steps=100,
    )
    meta = train_full(tmp_path / "assets", tmp_path / "work", device="cpu", jobs=1, plan=plan)
    assert meta["steps"] == {"vdsr-x2": 100}  # a measured budget, floored at 100 steps
    ckpts = sorted((tmp_path / "assets" / "checkpoints" / "full").glob("*.safetensors"))
    assert [p.name for p in ckpts] == ["vdsr-x2-l1-gv-s0.safetensors", "vdsr-x2-l1-s0.safetensors"]
    _model, info = load_model(ckpts[0])
    assert info["degradation"] == "standard"
    assert info["label"] == "vdsr-x2-l1+gv-s0 full"
    assert (
        json.loads((tmp_path / "assets" / "results" / "full_meta.json").read_text())["steps"] == meta["steps"]
    )
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(2):
        pixels = np.random.default_rng(seed).integers(0, 256, (40, 44, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"im{seed}.png")
    table = evaluate_full(tmp_path / "assets", progress=False, data=str(images))
    assert set(table["method"]) == {"HR", "bicubic", "vdsr-x2-l1-s0 full", "vdsr-x2-l1+gv-s0 full"}
    paired = pd.read_csv(tmp_path / "assets" / "results" / "paired_full.csv")
    assert (paired["n"] == 2).all()
    assert "| vdsr | x2 |" in (tmp_path / "assets" / "results" / "summary_full.md").read_text()
