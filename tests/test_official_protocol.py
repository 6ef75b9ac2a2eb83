"""``protocol="official"`` against an independent re-derivation of the official GV code (PIL + scipy, no gvcore).

Tolerances: 1e-6 dB on PSNR and 1e-6 on SSIM (the acceptance bar); LR and baseline images must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gvcore.eval.scoring import score_image
from gvcore.metrics import evaluate_pair, psnr, ssim
from gvcore.protocol import make_lr, pil_bilinear_resize, prepare_pair, score_ready, upscale_baseline
from tests.reference.official_protocol import official_lr_and_input, official_psnr, official_ssim

SIZES = [(48, 64), (50, 67), (37, 41)]  # multiples of 2 and 4, and sides that are not


def _image(seed: int, h: int, w: int) -> np.ndarray:
    """A structured 8-bit RGB image: gradients, an edge and noise (deterministic)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 3 + yy * 2) % 256
    edge = np.where(xx > w // 2, 200, 30)
    channels = [base, edge, rng.integers(0, 256, (h, w))]
    return np.stack(channels, axis=-1).astype(np.uint8)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def _array(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("h", "w"), SIZES)
def test_lr_and_baseline_are_pils(scale: int, h: int, w: int) -> None:
    hr8 = _image(h * w + scale, h, w)
    small, big = official_lr_and_input(hr8, scale)
    lr, hr = prepare_pair(_tensor(hr8), scale, "official")
    assert tuple(hr.shape[-2:]) == (h // scale * scale, w // scale * scale)
    np.testing.assert_array_equal(np.round(_array(lr) * 255).astype(np.uint8), small)
    np.testing.assert_array_equal(np.round(_array(upscale_baseline(lr, scale, "official")) * 255), big)
    np.testing.assert_array_equal(np.round(_array(make_lr(_tensor(hr8), scale, "official")) * 255), small)


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_metrics_on_unclamped_outputs(h: int, w: int) -> None:
    hr8 = _image(7 + h, h, w)
    rng = np.random.default_rng(h)
    prediction = hr8.astype(np.float64) / 255 + rng.normal(0, 0.05, hr8.shape)  # outside [0, 1] in places
    assert prediction.min() < 0
    assert prediction.max() > 1
    target = hr8.astype(np.float64) / 255
    sr = torch.from_numpy(prediction).permute(2, 0, 1).unsqueeze(0).float()
    got = evaluate_pair(score_ready(sr, "official"), _tensor(hr8), scale=4, protocol="official")
    sr_f = _array(sr)  # the float32 values actually scored
    assert abs(got.psnr.item() - official_psnr(sr_f, target)) <= 1e-6
    assert abs(got.ssim.item() - official_ssim(sr_f, target)) <= 1e-6
    assert abs(psnr(sr, _tensor(hr8), protocol="official").item() - official_psnr(sr_f, target)) <= 1e-6
    assert abs(ssim(sr, _tensor(hr8), protocol="official").item() - official_ssim(sr_f, target)) <= 1e-6


def test_symmetric_filtering_is_not_the_valid_region() -> None:
    """The official SSIM differs from the valid-region SSIM of the same luma (the bug this replaces)."""
    hr8 = _image(3, 40, 40)
    noisy = np.clip(hr8.astype(np.int16) + np.random.default_rng(0).integers(-30, 30, hr8.shape), 0, 255)
    a, b = _tensor(noisy.astype(np.uint8)), _tensor(hr8)
    official = ssim(a, b, protocol="official").item()
    valid = ssim(a, b, crop_border=2, y_channel=True).item()
    assert abs(official - valid) > 1e-4


@pytest.mark.parametrize("scale", [2, 4])
def test_scoring_path_baseline_row(scale: int) -> None:
    """score_image's baseline row under the official protocol is the official VDSR input, scored officially."""
    hr8 = _image(11, 50, 67)
    _, big = official_lr_and_input(hr8, scale)
    target = hr8[: big.shape[0], : big.shape[1]].astype(np.float64) / 255
    rows = {r["method"]: r for r in score_image(_tensor(hr8), scale, "official").rows}
    assert abs(rows["bilinear"]["psnr"] - official_psnr(big / 255.0, target)) <= 1e-6
    assert abs(rows["bilinear"]["ssim"] - official_ssim(big / 255.0, target)) <= 1e-6


def test_score_ready_policies() -> None:
    raw = torch.tensor([-0.2, 0.50001, 1.3])
    assert score_ready(raw, "official").tolist() == pytest.approx([-0.2, 0.50001, 1.3])
    assert (score_ready(raw, "standard") * 255).tolist() == [0.0, 128.0, 255.0]


def test_sixteen_bit_sources_go_through_pil_float_mode() -> None:
    x = torch.rand(1, 3, 20, 24, dtype=torch.float32) * 0.9 + 0.05  # not on the 8-bit grid
    out = pil_bilinear_resize(x, (10, 12))
    assert out.shape == (1, 3, 10, 12)
    assert torch.equal(out, (out * 255).round() / 255)  # rounded to 8 bits


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_official_ssim_cuda_equals_cpu() -> None:
    a = _tensor(_image(1, 64, 80))
    b = _tensor(_image(2, 64, 80))
    torch.testing.assert_close(
        ssim(a.cuda(), b.cuda(), protocol="official").cpu(),
        ssim(a, b, protocol="official"),
        rtol=0,
        atol=1e-12,
    )
