"""Evaluation: tiled inference, the tidy table, protocols, LR-only mode, summaries, validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gvcore.checkpoint.store import save_checkpoint
from gvcore.data.sources import load_pairs, resolve_images
from gvcore.eval.evaluate import (
    EVAL_COLUMNS,
    evaluate,
    summarize,
    tiled_forward,
    to_markdown,
    validate,
    write_csv,
)
from gvcore.eval.scoring import output_variances
from gvcore.io import load_image
from gvcore.metrics import evaluate_pair
from gvcore.models import build_model
from gvcore.protocol import make_lr, mod_crop, quantize_8bit
from gvcore.resize import imresize
from tests.image_fixtures import NoiseImages

#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=1, shapes=((34, 40), (32, 32)), folder="eval_images")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model("espcn", 2)
    path = tmp_path_factory.mktemp("ckpt") / "espcn.safetensors"
    loss = {"recipe": "l1+gv", "pixel": "l1", "gv_weight": 0.1, "gv_patch_size": 8}
    return save_checkpoint(path, model, loss=loss, seed=3, steps=1, label="espcn-test")


class TestTiledForward:
    @pytest.mark.parametrize("arch", ["espcn", "vdsr-lite"])
    def test_matches_whole_image(self, arch: str) -> None:
        torch.manual_seed(0)
        model = build_model(arch, 2).eval()
        lr = torch.rand(1, 3, 40, 37)
        with torch.no_grad():
            whole = model(lr)
            tiled = tiled_forward(model, lr, 2, tile=16, overlap=8)
        assert tiled.shape == whole.shape
        assert torch.allclose(tiled, whole, atol=1e-5)

    def test_small_image_is_one_tile(self) -> None:
        model = build_model("espcn", 2).eval()
        lr = torch.rand(1, 3, 20, 20)
        with torch.no_grad():
            assert torch.equal(tiled_forward(model, lr, 2, tile=32), model(lr))

    def test_bad_tile(self) -> None:
        with pytest.raises(ValueError, match="tile"):
            tiled_forward(build_model("espcn", 2), torch.rand(1, 3, 8, 8), 2, tile=0)


class TestEvaluate:
    def test_table(self, images: Path, checkpoint: Path) -> None:
        frame = evaluate([checkpoint], images, protocol="standard", progress=False)
        assert tuple(frame.columns) == EVAL_COLUMNS
        assert list(frame["method"]) == ["HR", "bicubic", "espcn-test"] * 2
        assert list(frame["image"]) == ["im0", "im0", "im0", "im1", "im1", "im1"]
        hr = frame[frame["method"] == "HR"]
        assert (hr["gv_distance"] == 0).all()
        assert hr["psnr"].isna().all()
        model_rows = frame[frame["method"] == "espcn-test"]
        assert (model_rows["arch"] == "espcn").all()
        assert (model_rows["loss"] == "l1+gv").all()
        assert (model_rows["gv_weight"] == 0.1).all()
        assert (model_rows["seed"] == 3).all()
        assert (frame["scale"] == 2).all()  # taken from the checkpoint

    def test_bicubic_row_is_the_standard_protocol(self, images: Path) -> None:
        frame = evaluate([], images, scale=2, protocol="standard", progress=False)
        hr = mod_crop(load_image(images / "im0.png"), 2)
        bicubic = quantize_8bit(imresize(make_lr(hr, 2), 2))
        want = evaluate_pair(bicubic, hr, 2, "standard")
        row = frame[(frame["method"] == "bicubic") & (frame["image"] == "im0")].iloc[0]
        assert row["psnr"] == pytest.approx(float(want.psnr[0]), abs=1e-9)
        assert row["ssim"] == pytest.approx(float(want.ssim[0]), abs=1e-9)
        assert (row["var_gx"], row["var_gy"]) == pytest.approx(output_variances(bicubic))

    def test_official_protocol_differs(self, images: Path) -> None:
        std = evaluate([], images, scale=2, protocol="standard", progress=False)
        off = evaluate([], images, scale=2, protocol="official", progress=False)
        assert (off["protocol"] == "official").all()
        assert list(off["method"].unique()) == ["HR", "bilinear"]  # the official VDSR input is the baseline
        assert not np.allclose(std["psnr"].dropna(), off["psnr"].dropna())

    def test_a_model_is_only_scored_on_its_training_degradation(
        self, images: Path, checkpoint: Path, tmp_path: Path
    ) -> None:
        from gvcore.checkpoint.store import load_model

        model, _meta = load_model(checkpoint)
        official = save_checkpoint(
            tmp_path / "official.safetensors", model, arch="espcn", scale=2, degradation="official"
        )
        with pytest.raises(ValueError, match="trained on 'official' LR"):
            evaluate([official], images, protocol="standard", progress=False)
        frame = evaluate([official], images, protocol="official", progress=False)
        assert frame["psnr"].notna().sum() == 4  # baseline and model on two images

    def test_var_ratio_column(self, images: Path, checkpoint: Path) -> None:
        frame = evaluate([checkpoint], images, progress=False)
        hr = frame[frame["method"] == "HR"].set_index("image")
        rows = frame[frame["method"] == "espcn-test"].set_index("image")
        want = 0.5 * (rows["var_gx"] / hr["var_gx"] + rows["var_gy"] / hr["var_gy"])
        np.testing.assert_allclose(rows["var_ratio"], want, rtol=1e-12)
        assert (hr["var_ratio"] == 1).all()

    def test_scale_mismatch(self, images: Path, checkpoint: Path) -> None:
        with pytest.raises(ValueError, match="scale"):
            evaluate([checkpoint], images, scale=4, progress=False)

    def test_lr_only(self, images: Path, checkpoint: Path) -> None:
        frame = evaluate([checkpoint], images, lr_only=True, progress=False)
        assert list(frame["method"]) == ["bicubic", "espcn-test"] * 2
        assert frame["psnr"].isna().all()
        assert frame["gv_distance"].isna().all()
        assert frame["var_gx"].notna().all()

    def test_summary_markdown_and_csv(self, images: Path, checkpoint: Path, tmp_path: Path) -> None:
        frame = evaluate([checkpoint, checkpoint], images, progress=False)
        assert list(frame["method"].unique()) == ["HR", "bicubic", "espcn-test", "espcn-test#2"]
        summary = summarize(frame)
        assert list(summary["images"]) == [2, 2, 2, 2]
        bicubic = frame[frame["method"] == "bicubic"]["psnr"].mean()
        assert summary.loc[summary["method"] == "bicubic", "psnr"].item() == pytest.approx(bicubic)
        table = to_markdown(summary)
        assert table.splitlines()[0].startswith("| method | images | psnr")
        path = write_csv(frame, tmp_path / "eval.csv")
        import pandas as pd

        back = pd.read_csv(path)
        assert list(back.columns) == list(EVAL_COLUMNS)
        assert len(back) == len(frame)
        assert back["psnr"].dropna().to_numpy() == pytest.approx(frame["psnr"].dropna().to_numpy(), abs=1e-6)


def test_validate(images: Path) -> None:
    pairs = load_pairs(resolve_images(images), 2)
    model = build_model("espcn", 2)
    metrics = validate(model, pairs, 2, torch.device("cpu"))
    assert set(metrics) == {"psnr", "ssim", "gv", "var_ratio"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert not model.training
