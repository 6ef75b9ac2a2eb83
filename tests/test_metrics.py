"""gvcore.metrics against an independent per-image numpy implementation of the BasicSR protocol."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gvcore.metrics import HIGHER_IS_BETTER, evaluate_pair, gaussian_window_1d, psnr, ssim
from gvcore.protocol import quantize_8bit
from tests.reference import basicsr_protocol as REF
from tests.reference import inputs as INPUTS

REF_DIR = Path(__file__).parent / "reference"
PSNR_TOL = 1e-4  # dB, the acceptance bound
SSIM_TOL = 1e-6


VALUES = json.loads((REF_DIR / "values.json").read_text())
U64 = 2.0**-53  # float64's unit roundoff


def ssim_error_bound(u: float) -> float:
    """Bound on |computed SSIM map mean - exact| for 8-bit-scale inputs, computing in unit roundoff ``u``.

    As ``tests/test_perceptual.py``'s ``ms_ssim_error_bound`` for one scale, with the statistics relative to the
    data range (C1 = (0.01 L)^2, C2 = (0.03 L)^2, so the bound does not depend on L): each filtered statistic is a
    121-tap sum with weights summing to 1, off by <= 150u of its magnitude; E[x^2] + E[y^2] is filtered as one map
    (magnitude 2 L^2), so sigma_x^2 + sigma_y^2 is off by <= 1000u L^2 and the contrast-structure ratio
    (denominator >= C2, |cs| <= 1) by <= 4 * 1000u L^2 / C2; the luminance term by <= 2 * 300u L / sqrt(C1) over
    its range; the mean adds 16u.
    """
    return 4000.0 * u / 0.03**2 + 600.0 * u / 0.01 + 16.0 * u


def _tensors(
    seed: int, h: int, w: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """8-bit image pair as (1, 3, H, W) tensors in [0, 1] (float64: exact algorithm checks) + the uint8 arrays."""
    sr8, hr8 = INPUTS.image_pair(seed, h, w)

    def to_t(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(a.transpose(2, 0, 1).astype(np.float64)) / 255.0)[None].to(dtype)

    return to_t(sr8), to_t(hr8), sr8, hr8


class TestStoredValues:
    @pytest.mark.parametrize("case", VALUES["metrics"], ids=lambda c: f"seed{c['seed']}-x{c['scale']}")
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_standard_official_and_rgb(self, case: dict, dtype: torch.dtype) -> None:
        sr, hr, _, _ = _tensors(case["seed"], case["height"], case["width"], dtype)
        scale = case["scale"]
        std = evaluate_pair(sr, hr, scale, "standard")
        off = evaluate_pair(sr, hr, scale, "official")
        assert abs(std.psnr.item() - case["standard"]["psnr"]) < PSNR_TOL
        assert abs(std.ssim.item() - case["standard"]["ssim"]) < SSIM_TOL
        assert abs(off.psnr.item() - case["official"]["psnr"]) < PSNR_TOL
        assert abs(off.ssim.item() - case["official"]["ssim"]) < SSIM_TOL
        assert abs(psnr(sr, hr).item() - case["rgb_crop0"]["psnr"]) < PSNR_TOL
        assert abs(ssim(sr, hr).item() - case["rgb_crop0"]["ssim"]) < SSIM_TOL


class TestLiveReference:
    @pytest.mark.parametrize(("crop", "y"), [(0, False), (3, False), (0, True), (4, True)])
    def test_batch_matches_per_image(self, crop: int, y: bool) -> None:
        pairs = [_tensors(seed, 33, 45) for seed in (5, 6, 7)]
        sr = torch.cat([p[0] for p in pairs])
        hr = torch.cat([p[1] for p in pairs])
        got_p = psnr(sr, hr, crop_border=crop, y_channel=y)
        got_s = ssim(sr, hr, crop_border=crop, y_channel=y)
        assert got_p.dtype == torch.float64
        assert got_p.shape == (3,)
        for i, (_, _, sr8, hr8) in enumerate(pairs):
            assert abs(got_p[i].item() - REF.calculate_psnr(sr8, hr8, crop, y)) < 1e-9
            assert abs(got_s[i].item() - REF.calculate_ssim(sr8, hr8, crop, y)) < 1e-12

    def test_official_protocol_live(self) -> None:
        from tests.reference.official_protocol import official_psnr, official_ssim

        sr, hr, sr8, hr8 = _tensors(8, 40, 36)
        a, b = sr8.astype(np.float64) / 255, hr8.astype(np.float64) / 255
        assert abs(psnr(sr, hr, protocol="official").item() - official_psnr(a, b)) < 1e-9
        assert abs(ssim(sr, hr, protocol="official").item() - official_ssim(a, b)) < 1e-9

    def test_gray_single_channel(self) -> None:
        sr, hr, sr8, hr8 = _tensors(9, 30, 30)
        assert abs(psnr(sr[:, :1], hr[:, :1]).item() - REF.calculate_psnr(sr8[..., :1], hr8[..., :1])) < 1e-9
        assert abs(ssim(sr[:, :1], hr[:, :1]).item() - REF.calculate_ssim(sr8[..., :1], hr8[..., :1])) < 1e-12

    def test_data_range_255(self) -> None:
        sr, hr, _, _ = _tensors(10, 24, 24)
        torch.testing.assert_close(psnr(sr * 255, hr * 255, data_range=255.0), psnr(sr, hr))
        torch.testing.assert_close(ssim(sr * 255, hr * 255, data_range=255.0), ssim(sr, hr))

    def test_luma_equals_color_rgb_to_y(self) -> None:
        from gvcore.color import rgb_to_y
        from gvcore.metrics import _prepare
        from gvcore.protocol import MetricOptions

        x = torch.rand(2, 3, 9, 8, dtype=torch.float64)
        a, _ = _prepare(x, x, MetricOptions(1, "bt601", "valid"), 1.0)
        torch.testing.assert_close(a, rgb_to_y(x)[..., 1:-1, 1:-1], rtol=0, atol=1e-12)

    def test_conv_path_equals_cpu_shifted_path(self) -> None:
        from gvcore.metrics import _ssim_map_mean

        a = torch.rand(3, 2, 30, 27, dtype=torch.float64) * 255
        b = (a + 20 * torch.rand(a.shape, dtype=torch.float64)).clamp(0, 255)
        # two summation orders (conv2d and shifted multiply-adds): each within the rounding bound of the exact value
        torch.testing.assert_close(
            _ssim_map_mean(a, b, use_conv=True), _ssim_map_mean(a, b), rtol=0, atol=2 * ssim_error_bound(U64)
        )

    def test_evaluate_pair_equals_separate_calls(self) -> None:
        sr, hr, _, _ = _tensors(13, 40, 44)
        pair = evaluate_pair(sr, hr, 3)
        torch.testing.assert_close(
            pair.psnr, psnr(sr, hr, crop_border=3, protocol="standard"), rtol=0, atol=1e-12
        )
        torch.testing.assert_close(
            pair.ssim, ssim(sr, hr, crop_border=3, protocol="standard"), rtol=0, atol=1e-15
        )

    def test_gaussian_window(self) -> None:
        window = np.outer(gaussian_window_1d().numpy(), gaussian_window_1d().numpy())
        np.testing.assert_allclose(window, REF.gaussian_window(), rtol=0, atol=1e-16)


class TestProperties:
    def test_identical_images(self) -> None:
        x = torch.rand(3, 3, 20, 20)
        assert psnr(x, x).tolist() == [math.inf] * 3
        assert ssim(x, x).tolist() == [1.0] * 3
        assert evaluate_pair(x, x, 2, "official").ssim.tolist() == [1.0] * 3

    def test_psnr_closed_form(self) -> None:
        hr = torch.full((1, 3, 8, 8), 100 / 255, dtype=torch.float64)
        assert abs(psnr(hr + 2 / 255, hr).item() - 10 * math.log10(255**2 / 4)) < 1e-9

    def test_mixed_identical_and_different(self) -> None:
        x = torch.rand(2, 3, 16, 16)
        y = x.clone()
        y[1] = quantize_8bit(y[1] * 0.9)
        p = psnr(y, x)
        assert math.isinf(p[0].item())
        assert math.isfinite(p[1].item())

    def test_nan_propagates(self) -> None:
        x = torch.rand(2, 3, 16, 16)
        y = x.clone()
        y[0, 0, 3, 3] = float("nan")
        assert math.isnan(psnr(y, x)[0].item())
        assert math.isnan(ssim(y, x)[0].item())
        assert ssim(y, x)[1].item() == 1.0

    def test_non_contiguous(self) -> None:
        x = torch.rand(2, 20, 18, 3).permute(0, 3, 1, 2)
        y = quantize_8bit(x * 0.8)
        torch.testing.assert_close(
            ssim(y, x, crop_border=2), ssim(y.contiguous(), x.contiguous(), crop_border=2)
        )

    def test_float64_and_float16_inputs(self) -> None:
        x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        y = quantize_8bit(x * 0.9)
        torch.testing.assert_close(psnr(y.float(), x.float()), psnr(y, x), rtol=1e-5, atol=1e-4)
        assert psnr(y.half(), x.half()).dtype == torch.float64

    def test_quantize_8bit(self) -> None:
        x = torch.tensor([-1.0, 0.0, 0.0019, 0.002, 0.5, 0.99999, 2.0])
        q = quantize_8bit(x)
        assert (q * 255).tolist() == [0.0, 0.0, 0.0, 1.0, 128.0, 255.0, 255.0]

    def test_higher_is_better(self) -> None:
        assert psnr.higher_is_better is True
        assert ssim.higher_is_better is True
        assert HIGHER_IS_BETTER == {"psnr": True, "ssim": True}

    def test_protocol_keywords_equal_explicit_settings(self) -> None:
        sr, hr, _, _ = _tensors(11, 32, 32)
        assert psnr(sr, hr, crop_border=4, protocol="standard") == psnr(sr, hr, crop_border=4, y_channel=True)
        assert ssim(sr, hr, crop_border=4, y_channel=True, protocol="standard") == ssim(
            sr, hr, crop_border=4, y_channel=True
        )
        assert psnr(sr, hr, protocol="official") == psnr(sr, hr)

    @pytest.mark.cuda
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda_matches_cpu(self) -> None:
        sr, hr, _, _ = _tensors(12, 40, 40)
        for protocol in ("standard", "official"):
            cpu = evaluate_pair(sr, hr, 4, protocol)
            gpu = evaluate_pair(sr.cuda(), hr.cuda(), 4, protocol)
            assert gpu.psnr.device.type == "cuda"
            torch.testing.assert_close(gpu.psnr.cpu(), cpu.psnr, rtol=0, atol=1e-9)
            torch.testing.assert_close(gpu.ssim.cpu(), cpu.ssim, rtol=0, atol=1e-12)


class TestErrors:
    x = torch.rand(1, 3, 24, 24)

    def test_unknown_protocol(self) -> None:
        with pytest.raises(ValueError, match="protocol must be one of 'standard', 'official'; got 'matlab'"):
            psnr(self.x, self.x, protocol="matlab")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="protocol must be one of"):
            evaluate_pair(self.x, self.x, 2, "basicsr")  # type: ignore[arg-type]

    def test_standard_needs_crop(self) -> None:
        with pytest.raises(ValueError, match="pass crop_border=scale"):
            ssim(self.x, self.x, protocol="standard")

    def test_standard_rejects_rgb(self) -> None:
        with pytest.raises(ValueError, match="scores the Y channel; got y_channel=False"):
            psnr(self.x, self.x, crop_border=2, y_channel=False, protocol="standard")

    def test_official_fixes_crop(self) -> None:
        with pytest.raises(ValueError, match="official' fixes the crop"):
            ssim(self.x, self.x, crop_border=4, protocol="official")

    def test_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match="sr and hr must have the same shape"):
            psnr(self.x, self.x[..., :20])

    def test_too_small_after_crop(self) -> None:
        with pytest.raises(ValueError, match="at least 11x11 pixels after cropping crop_border=7"):
            ssim(self.x, self.x, crop_border=7)
        with pytest.raises(ValueError, match="at least 1x1 pixels after cropping crop_border=12"):
            psnr(self.x, self.x, crop_border=12)

    def test_negative_crop(self) -> None:
        with pytest.raises(ValueError, match="crop_border must be >= 0"):
            psnr(self.x, self.x, crop_border=-1)

    def test_y_channel_needs_rgb(self) -> None:
        with pytest.raises(ValueError, match="sr must have 3 channels"):
            psnr(self.x[:, :1], self.x[:, :1], y_channel=True)

    def test_integer_tensor(self) -> None:
        x8 = (self.x * 255).to(torch.uint8)
        with pytest.raises(TypeError, match="floating-point"):
            psnr(x8, x8)

    @pytest.mark.parametrize("data_range", [0, -1.0, float("nan")])
    def test_bad_data_range(self, data_range: float) -> None:
        with pytest.raises(ValueError, match="data_range must be a number > 0"):
            ssim(self.x, self.x, data_range=data_range)

    def test_bad_scale(self) -> None:
        with pytest.raises(ValueError, match="scale must be >= 1"):
            evaluate_pair(self.x, self.x, 0)

    def test_quantize_needs_float(self) -> None:
        with pytest.raises(TypeError, match="floating-point"):
            quantize_8bit(torch.zeros(2, dtype=torch.uint8))


def test_empty_batch_is_refused() -> None:
    empty = torch.rand(0, 3, 32, 32)
    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match="at least one image"):
            metric(empty, empty)
    with pytest.raises(ValueError, match="at least one image"):
        evaluate_pair(empty, empty, scale=2)


def test_batch_equals_per_image_across_cpu_chunks() -> None:
    g = torch.Generator().manual_seed(3)
    hr = quantize_8bit(torch.rand(5, 3, 24, 24, generator=g))
    sr = quantize_8bit((hr + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1))
    batch = evaluate_pair(sr, hr, scale=2)
    single = [evaluate_pair(sr[i : i + 1], hr[i : i + 1], scale=2) for i in range(5)]
    torch.testing.assert_close(batch.psnr, torch.cat([m.psnr for m in single]), rtol=0, atol=1e-12)
    torch.testing.assert_close(batch.ssim, torch.cat([m.ssim for m in single]), rtol=0, atol=1e-12)
