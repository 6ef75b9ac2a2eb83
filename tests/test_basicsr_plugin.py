"""The BasicSR plug-in (gvcore.integrations.basicsr) against the real ``basicsr`` package.

Skips when BasicSR is not installed, except under ``CI=true`` (``.ci/run`` installs it), where it must run.
The YAML the training test uses is read from the user guide's "Use the GV loss in BasicSR" page
(docs/guide/basicsr.md), so the snippet shown there is the one tested.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gvcore
from gvcore.eval.scoring import gv_distance, output_variances, variance_ratio
from gvcore.protocol import score_ready

if importlib.util.find_spec("basicsr") is None and os.environ.get("CI", "").lower() != "true":
    pytest.skip(
        "basicsr is not installed (see docs/guide/basicsr.md, 'Use the GV loss in BasicSR'); under CI=true this test runs",
        allow_module_level=True,
    )

import yaml

import gvcore.integrations.basicsr as plugin

# isort: split
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models import build_model
from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
BASICSR_PAGE = ROOT / "docs" / "guide" / "basicsr.md"  # the guide page whose snippets are tested
SCALE = 2


def _readme_block(language: str) -> str:
    text = BASICSR_PAGE.read_text(encoding="utf-8")
    start = text.index("# Use the GV loss in BasicSR")
    block = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    assert block is not None
    return block.group(1)


def _readme_options() -> dict[str, Any]:
    return yaml.safe_load(_readme_block("yaml"))


def _bgr_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) RGB in [0, 1] -> (H, W, 3) uint8 BGR, as BasicSR's tensor2img returns."""
    return score_ready(x, "standard")[0].mul(255).round().byte().permute(1, 2, 0).numpy()[..., ::-1].copy()


def test_registered() -> None:
    names = ("GradientVarianceLoss", "GVCompositeLoss")
    assert all(name in LOSS_REGISTRY for name in names)
    assert "calculate_gv_distance" in METRIC_REGISTRY
    assert "calculate_gv_variance_ratio" in METRIC_REGISTRY


def test_register_again_is_a_no_op() -> None:
    plugin.register()
    assert LOSS_REGISTRY.get("GradientVarianceLoss") is plugin.GradientVarianceLoss


def test_torchvision_shim_maps_to_functional() -> None:
    import torchvision.transforms.functional as functional

    shimmed = sys.modules["torchvision.transforms.functional_tensor"]
    assert hasattr(shimmed, "rgb_to_grayscale")
    if plugin.install_torchvision_shim() is False and shimmed is not functional:
        pytest.skip("this torchvision still has functional_tensor; nothing to shim")
    assert shimmed is functional


def test_torchvision_shim_keeps_an_existing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = type(sys)("torchvision.transforms.functional_tensor")
    monkeypatch.setitem(sys.modules, "torchvision.transforms.functional_tensor", sentinel)
    assert plugin.install_torchvision_shim() is False
    assert sys.modules["torchvision.transforms.functional_tensor"] is sentinel


@pytest.mark.parametrize(
    ("options", "reference"),
    [
        ({"loss_weight": 0.5}, {}),
        ({"loss_weight": 2.0, "patch_size": 4, "distance": "l1"}, {"patch_size": 4, "distance": "l1"}),
        ({"loss_weight": 0.03, "reduction": "none", "stride": 4}, {"reduction": "none", "stride": 4}),
    ],
)
def test_build_loss_equals_gvcore_times_weight(options: dict[str, Any], reference: dict[str, Any]) -> None:
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 24, 20, generator=gen)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=gen)).requires_grad_()
    loss_fn = build_loss({"type": "GradientVarianceLoss", **options})
    value = loss_fn(sr, hr)
    expected = options["loss_weight"] * gvcore.gradient_variance_loss(sr, hr, **reference)
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=0.0)
    assert float(expected.detach().sum()) > 0


def test_loss_gradient_flows() -> None:
    hr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    sr = (0.5 * hr).requires_grad_()  # half the contrast: a quarter of HR's variance
    build_loss({"type": "GradientVarianceLoss", "loss_weight": 1.0})(sr, hr).backward()
    assert sr.grad is not None
    assert float(sr.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"distance": "huber"}, "distance must be one of"),
        ({"patch_size": 1}, "patch_size"),
        ({"loss_weight": math.nan}, "loss_weight must be a finite number"),
        ({"loss_weight": "1"}, "loss_weight must be a finite number"),
    ],
)
def test_bad_loss_options_fail_at_build(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_loss({"type": "GradientVarianceLoss", **options})


def test_elementwise_weight_is_refused() -> None:
    x = torch.rand(1, 3, 16, 16)
    loss_fn = build_loss({"type": "GradientVarianceLoss"})
    with pytest.raises(ValueError, match="element-wise weight"):
        loss_fn(x, x, weight=torch.ones_like(x))


def test_composite_loss_is_the_sum() -> None:
    gen = torch.Generator().manual_seed(2)
    hr = torch.rand(2, 3, 16, 16, generator=gen)
    sr = torch.rand(2, 3, 16, 16, generator=gen)
    loss_fn = build_loss(
        {
            "type": "GVCompositeLoss",
            "loss_weight": 2.0,
            "losses": [{"type": "L1Loss"}, {"type": "GradientVarianceLoss", "loss_weight": 0.03}],
        }
    )
    expected = 2.0 * ((sr - hr).abs().mean() + 0.03 * gvcore.gradient_variance_loss(sr, hr))
    torch.testing.assert_close(loss_fn(sr, hr), expected, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize(
    ("losses", "match"),
    [([], "non-empty list"), ({"type": "L1Loss"}, "non-empty list"), ([{"loss_weight": 1}], r"losses\[0\]")],
)
def test_composite_loss_bad_options(losses: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_loss({"type": "GVCompositeLoss", "losses": losses})


def _image_pair() -> tuple[torch.Tensor, torch.Tensor]:
    hr = gvcore.load_image(gvcore.bundled_image_paths("test")[-1])[..., :64, :72]
    sr = gvcore.imresize(gvcore.imresize(hr, 1 / SCALE), SCALE)
    return score_ready(sr, "standard"), hr


@pytest.mark.parametrize("crop_border", [0, 3])
def test_gv_distance_metric_equals_scoring(crop_border: int) -> None:
    sr, hr = _image_pair()
    data = {"img": _bgr_uint8(sr), "img2": _bgr_uint8(hr)}
    value = calculate_metric(
        data, {"type": "calculate_gv_distance", "crop_border": crop_border, "better": "lower"}
    )
    c = slice(crop_border, -crop_border if crop_border else None)
    expected = gv_distance(sr[..., c, c], hr[..., c, c])
    assert value == pytest.approx(expected, rel=1e-6)
    assert expected > 0


def test_gv_distance_metric_y_channel_and_chw() -> None:
    sr, hr = _image_pair()
    img, img2 = _bgr_uint8(sr).transpose(2, 0, 1), _bgr_uint8(hr).transpose(2, 0, 1)
    opts = {"type": "calculate_gv_distance", "crop_border": 2, "input_order": "CHW", "test_y_channel": True}
    value = calculate_metric({"img": img, "img2": img2}, opts)
    y_sr, y_hr = (gvcore.rgb_to_y(t[..., 2:-2, 2:-2].double()).float() / 255 for t in (sr, hr))
    assert value == pytest.approx(gv_distance(y_sr, y_hr), rel=1e-5)


def test_variance_ratio_metric_equals_scoring() -> None:
    sr, hr = _image_pair()
    data = {"img": _bgr_uint8(sr), "img2": _bgr_uint8(hr)}
    value = calculate_metric(data, {"type": "calculate_gv_variance_ratio", "crop_border": 0})
    expected = variance_ratio(*output_variances(sr), *output_variances(hr))
    assert value == pytest.approx(expected, rel=1e-6)
    assert expected < 1.0  # bicubic has less gradient variance than HR


def test_identical_images_score_zero_distance_and_unit_ratio() -> None:
    _, hr = _image_pair()
    data = {"img": _bgr_uint8(hr), "img2": _bgr_uint8(hr)}
    assert calculate_metric(data, {"type": "calculate_gv_distance", "crop_border": 0}) == 0.0
    assert calculate_metric(data, {"type": "calculate_gv_variance_ratio", "crop_border": 0}) == 1.0


@pytest.mark.parametrize(
    ("img2_shape", "opts", "match"),
    [
        ((32, 30, 3), {"crop_border": 0}, "same shape"),
        ((32, 32, 3), {"crop_border": -1}, "crop_border"),
        ((32, 32, 3), {"crop_border": 0, "input_order": "HCW"}, "input_order"),
    ],
)
def test_metric_bad_input(img2_shape: tuple[int, ...], opts: dict[str, Any], match: str) -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=match):
        plugin.calculate_gv_distance(img, np.zeros(img2_shape, np.uint8), **opts)


def _write_paired_set(root: Path, split: str, count: int, size: int) -> dict[str, Any]:
    """HR crops of bundled images and their MATLAB-bicubic LR, as PNG folders for PairedImageDataset."""
    (root / "gt").mkdir(parents=True)
    (root / "lq").mkdir()
    for path in gvcore.bundled_image_paths(split)[:count]:
        hr = gvcore.load_image(path)[..., :size, :size]
        gvcore.save_image(hr, root / "gt" / f"{path.stem}.png")
        gvcore.save_image(gvcore.imresize(hr, 1 / SCALE), root / "lq" / f"{path.stem}.png")
    return {
        "name": f"bundled-{split}",
        "type": "PairedImageDataset",
        "dataroot_gt": str(root / "gt"),
        "dataroot_lq": str(root / "lq"),
        "io_backend": {"type": "disk"},
        "filename_tmpl": "{}",
        "scale": SCALE,
    }


def _sr_model_options(tmp_path: Path) -> dict[str, Any]:
    readme = _readme_options()
    return {
        "name": "gv-basicsr-test",
        "model_type": "SRModel",
        "scale": SCALE,
        "num_gpu": 0,
        "is_train": True,
        "dist": False,
        "rank": 0,
        "world_size": 1,
        "path": {"pretrain_network_g": None, "resume_state": None, "visualization": str(tmp_path / "vis")},
        "network_g": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2,
                      "upscale": SCALE, "img_range": 1.0},
        "train": {
            "optim_g": {"type": "Adam", "lr": 2e-3},
            "scheduler": {"type": "MultiStepLR", "milestones": [1000], "gamma": 0.5},
            "total_iter": 20,
            **readme["train"],
        },
        "val": {"save_img": False, **readme["val"]},
    }  # fmt: skip


def _independent_val_scores(model: Any, val_set: PairedImageDataset) -> dict[str, float]:
    """Mean GV distance and variance ratio of the trained network on the val set, straight from gvcore.eval.scoring."""
    distances, ratios = [], []
    model.net_g.eval()
    with torch.no_grad():
        for item in val_set:
            out = score_ready(model.net_g(item["lq"][None]), "standard")[..., 2:-2, 2:-2]
            gt = item["gt"][None][..., 2:-2, 2:-2]
            distances.append(gv_distance(out, gt))
            ratios.append(variance_ratio(*output_variances(out), *output_variances(gt)))
    return {"gv_distance": float(np.mean(distances)), "var_ratio": float(np.mean(ratios))}


def test_sr_model_trains_with_readme_yaml(tmp_path: Path) -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    train_opt = _write_paired_set(tmp_path / "train", "train", 4, 96)
    train_opt |= {"phase": "train", "gt_size": 48, "use_hflip": True, "use_rot": True}
    val_opt = _write_paired_set(tmp_path / "val", "test", 2, 64) | {"phase": "val"}
    train_set, val_set = PairedImageDataset(train_opt), PairedImageDataset(val_opt)
    loader = torch.utils.data.DataLoader(train_set, batch_size=4, shuffle=True, generator=torch.Generator())
    model = build_model(_sr_model_options(tmp_path))
    assert isinstance(model.cri_pix, plugin.GVCompositeLoss)

    losses = []
    for it in range(1, 21):
        model.feed_data(next(iter(loader)))
        model.optimize_parameters(it)
        losses.append(model.log_dict["l_pix"])
        if it == 1:  # the logged loss is L1 + 0.03 GV of this step's output, computed by gvcore
            out, gt = model.output.detach(), model.gt
            expected = (out - gt).abs().mean() + 0.03 * gvcore.gradient_variance_loss(out, gt)
            assert losses[0] == pytest.approx(float(expected), rel=1e-5)
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])

    val_loader = torch.utils.data.DataLoader(val_set, batch_size=1)
    model.validation(val_loader, current_iter=20, tb_logger=None, save_img=False)
    results = model.metric_results
    expected_scores = _independent_val_scores(model, val_set)
    assert results["gv_distance"] == pytest.approx(expected_scores["gv_distance"], rel=1e-5)
    assert results["var_ratio"] == pytest.approx(expected_scores["var_ratio"], rel=1e-5)
    assert results["psnr"] > 15


@pytest.mark.slow  # a fresh interpreter importing torch and BasicSR, then 20 iterations: ~20 s
def test_readme_entry_point_runs_basicsr_train_pipeline(tmp_path: Path) -> None:
    """The guide's ``train_gv.py`` and YAML through BasicSR's whole ``train_pipeline``, in a fresh interpreter."""
    train_opt = _write_paired_set(tmp_path / "train", "train", 4, 96)
    train_opt |= {
        "gt_size": 48,
        "use_hflip": True,
        "use_rot": True,
        "num_worker_per_gpu": 0,
        "batch_size_per_gpu": 4,
        "dataset_enlarge_ratio": 5,
        "prefetch_mode": None,
    }
    val_opt = _write_paired_set(tmp_path / "val", "test", 2, 64)
    model_opt = _sr_model_options(tmp_path)
    options = {
        "name": "gv_readme",
        "model_type": "SRModel",
        "scale": SCALE,
        "num_gpu": 0,
        "manual_seed": 0,
        "datasets": {"train": train_opt, "val": val_opt},
        "network_g": model_opt["network_g"],
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": model_opt["train"],
        "val": {"val_freq": 20, **model_opt["val"]},
        "logger": {"print_freq": 10, "save_checkpoint_freq": 20, "use_tb_logger": False},
    }  # fmt: skip
    (tmp_path / "options.yml").write_text(yaml.safe_dump(options), encoding="utf-8")
    (tmp_path / "train_gv.py").write_text(_readme_block("py"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "train_gv.py", "-opt", "options.yml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    experiment = tmp_path / "experiments" / "gv_readme"
    assert (experiment / "models" / "net_g_20.pth").is_file()
    (log,) = experiment.glob("train_gv_readme_*.log")
    text = log.read_text(encoding="utf-8")
    assert "GVCompositeLoss" in text
    assert re.search(r"# gv_distance: \d+\.\d+", text)
    assert re.search(r"# var_ratio: \d+\.\d+", text)
