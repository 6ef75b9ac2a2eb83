"""GMSD and MS-SSIM (gvcore.perceptual): contract, errors, behaviour, and agreement with piq.

piq (``piq==0.8.0`` in requirements-dev.txt) is the independent reference. Locally a missing piq skips those
checks; under ``CI=true`` it fails them. The tolerances are worst-case rounding bounds derived below, not
measured spreads: two exact implementations of the same formula must agree within them on any machine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

import gvcore
from gvcore.metrics import gaussian_window_1d
from gvcore.perceptual import GMSD_T, MS_SSIM_MIN_SIZE, MS_SSIM_WEIGHTS, gmsd, ms_ssim

Metric = Callable[..., torch.Tensor]

# ----------------------------------------------------------------------------------------------------
# Tolerances: worst-case rounding error of ONE implementation computing in unit roundoff u, inputs in [0, 1].
# Two implementations differ by at most the sum of their bounds.
U64 = 2.0**-53
U32 = 2.0**-24
GMSD_C = GMSD_T / 255.0**2  # c for data_range = 1
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def gmsd_error_bound(u: float) -> float:
    """Bound on |computed GMSD - exact GMSD|.

    Absolute error of a gradient magnitude m: luma <= 3u, 2x2 mean <= 3u more, Prewitt (6 taps of 1/3, the 1/3
    itself rounded) <= 26u, sqrt(gx^2 + gy^2) <= 40u. GMS = (2ab + c) / (a^2 + b^2 + c) has
    |dGMS/da| = 2|b - a| (b(a + b) + c) / (a^2 + b^2 + c)^2 <= 1 / sqrt(c) (the supremum, at a = 0,
    b = sqrt(c)), so with two magnitudes and the ratio's own rounding a GMS value is off by
    <= 80u / sqrt(c) + 5u. The population std is 1-Lipschitz in the max norm
    (|std a - std b| <= std(a - b) <= max |a - b|); its two-pass mean and sum over <= 2^16 pixels (pairwise
    summation) add <= 40u.
    """
    return 80.0 * u / math.sqrt(GMSD_C) + 45.0 * u


def ms_ssim_error_bound(u: float, score: float) -> float:
    """Bound on |computed MS-SSIM - exact MS-SSIM| for a pair whose MS-SSIM is ``score`` (> 0).

    Each filtered statistic is a 121-tap sum with weights summing to 1 of values in [0, 1] (squares and the
    pooled inputs' own rounding included): <= 150u. A variance / covariance E[xy] - mu_x mu_y is then off by
    <= 500u. The contrast-structure term (2 s_xy + C2) / (s_x^2 + s_y^2 + C2) has |cs| <= 1 and a
    denominator >= C2, so it is off by <= (2 + 1 + 1) * 500u / C2; the luminance term has the form of GMS
    (supremum of its derivative 1 / sqrt(C1)), off by <= 2 * 150u / sqrt(C1); the map mean adds 16u. So each
    scale's term v_i is off by <= d = 2000u / C2 + 300u / sqrt(C1) + 16u. MS-SSIM = prod v_i^w_i has
    dMS = MS * sum w_i dv_i / v_i, and v_i <= 1 for all i gives v_i >= MS^(1 / w_i), so
    dMS <= d * sum w_i MS^(1 - 1 / w_i).
    """
    d = 2000.0 * u / SSIM_C2 + 300.0 * u / math.sqrt(SSIM_C1) + 16.0 * u
    return d * sum(w * score ** (1.0 - 1.0 / w) for w in MS_SSIM_WEIGHTS)


# float32 piq is compared for GMSD only: for MS-SSIM the same bound in float32 is d = 2000u / C2 ~ 0.13 per
# term (the cancellation in E[x^2] - mu^2 against C2 = 9e-4), too loose to test anything. piq is run in
# float64 there, which removes the precision difference and leaves the algorithm to compare.

# ----------------------------------------------------------------------------------------------------
# Deterministic test images (scikit-image ships these; nothing is downloaded).


def camera(rows: slice = slice(160, 352), cols: slice = slice(160, 352)) -> torch.Tensor:
    """A crop of skimage's 512x512 'camera' (192x192 by default), ``(1, 1, h, w)`` float32 in [0, 1]."""
    return (
        torch.from_numpy(np.ascontiguousarray(skimage.data.camera()[rows, cols])).float().div(255)[None, None]
    )


def astronaut(rows: slice = slice(0, 192), cols: slice = slice(160, 352)) -> torch.Tensor:
    """A crop of skimage's 512x512 RGB 'astronaut' (192x192 by default), ``(1, 3, h, w)``, float32, [0, 1]."""
    array = np.ascontiguousarray(skimage.data.astronaut()[rows, cols].transpose(2, 0, 1))
    return torch.from_numpy(array).float().div(255)[None]


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding), clamped to [0, 1] (piq refuses values above 1)."""
    radius = math.ceil(3 * sigma)
    taps = gaussian_window_1d(2 * radius + 1, sigma).to(x.dtype)
    c = x.shape[1]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(out, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c).clamp(0, 1)


def noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Additive Gaussian noise from a seeded generator, clamped to [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=gen, dtype=x.dtype)).clamp(0, 1)


def luma64(x: torch.Tensor) -> torch.Tensor:
    """The spec's luma 0.299 R + 0.587 G + 0.114 B in float64, written independently of gvcore."""
    x = x.double()
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).contiguous()


def degraded_pair(reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two distortions of one reference (blur, noise) and the reference repeated."""
    distorted = torch.cat([blur(reference, 1.5), noise(reference, 0.05)])
    return distorted, reference.expand_as(distorted).contiguous()


@pytest.fixture(scope="module")
def piq() -> ModuleType:
    try:
        import piq as module
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("piq, the independent reference of gvcore.perceptual, is missing under CI=true")
        pytest.skip(
            "piq is not installed: the reference checks need `pip install piq==0.8.0` (requirements-dev)"
        )
    return module


IMAGES = {"gray": camera, "rgb": astronaut}


def bad_inputs(size: int) -> list[tuple[torch.Tensor, torch.Tensor, type[Exception], str]]:
    """(x, y, error, message) for every refused input; ``size`` is a valid side for the metric."""
    ok = torch.rand(1, 3, size, size)
    return [
        (ok[0], ok[0], ValueError, r"x must have shape \(B, C, H, W\); got 3 dims"),
        (ok, ok[0], ValueError, r"y must have shape \(B, C, H, W\); got 3 dims"),
        (
            torch.rand(1, 2, size, size),
            torch.rand(1, 2, size, size),
            ValueError,
            "x must have 1 or 3 channels",
        ),
        (ok, torch.rand(1, 4, size, size), ValueError, "y must have 1 or 3 channels"),
        (ok, torch.rand(1, 1, size, size), ValueError, r"x and y must have the same shape; got \(1, 3,"),
        (ok, ok[..., :-1], ValueError, "x and y must have the same shape"),
        ((ok * 255).to(torch.uint8), ok, TypeError, "x must be a floating-point tensor"),
        (ok, (ok * 255).to(torch.int64), TypeError, "y must be a floating-point tensor"),
        (ok.numpy(), ok, TypeError, "x must be a torch.Tensor"),
        (ok[:0], ok[:0], ValueError, "at least one image"),
    ]


# ----------------------------------------------------------------------------------------------------


class TestGmsd:
    def test_smoke(self) -> None:
        reference = camera(slice(0, 64), slice(0, 64))
        score = gmsd(noise(reference, 0.1), reference)
        assert score.shape == (1,)
        assert score.dtype == torch.float64
        assert 0 < score.item() < 1

    @pytest.mark.parametrize("channels", [1, 3])
    def test_batch_gives_the_single_image_values(self, channels: int) -> None:
        gen = torch.Generator().manual_seed(1)
        x, y = torch.rand(3, channels, 40, 52, generator=gen), torch.rand(3, channels, 40, 52, generator=gen)
        batch = gmsd(x, y)
        assert batch.shape == (3,)
        singles = torch.cat([gmsd(x[i : i + 1], y[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(batch, singles, rtol=0, atol=1e-14)

    @pytest.mark.parametrize("case", range(len(bad_inputs(8))))
    def test_refuses_bad_inputs(self, case: int) -> None:
        x, y, error, message = bad_inputs(8)[case]
        with pytest.raises(error, match=message):
            gmsd(x, y)

    @pytest.mark.parametrize("data_range", [0, -1.0, math.inf, math.nan, True, "1"])
    def test_refuses_bad_data_range(self, data_range: object) -> None:
        x = torch.rand(1, 1, 8, 8)
        with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
            gmsd(x, x, data_range=data_range)  # type: ignore[arg-type]

    @pytest.mark.parametrize("shape", [(2, 3, 33, 47), (1, 1, 1, 1), (1, 1, 2, 3)])
    def test_identical_images_score_zero(self, shape: tuple[int, ...]) -> None:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
        assert gmsd(x, x).tolist() == [0.0] * shape[0]

    @pytest.mark.parametrize("degrade", [blur, noise], ids=["blur", "noise"])
    def test_grows_with_the_degradation(self, degrade: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
        reference = camera(slice(100, 228), slice(150, 278))
        levels = [0.5, 1.0, 2.0, 3.0] if degrade is blur else [0.01, 0.03, 0.1, 0.3]
        distorted = torch.cat([degrade(reference, s) for s in levels])
        scores = gmsd(distorted, reference.expand_as(distorted)).tolist()
        assert scores == sorted(scores)
        assert len(set(scores)) == len(scores)

    def test_non_contiguous_input(self) -> None:
        gen = torch.Generator().manual_seed(3)
        big_x, big_y = torch.rand(2, 3, 80, 90, generator=gen), torch.rand(2, 3, 80, 90, generator=gen)
        x, y = big_x[..., ::2, 1::2], big_y.transpose(-1, -2).contiguous().transpose(-1, -2)[..., ::2, 1::2]
        assert not x.is_contiguous()
        assert not y.is_contiguous()
        torch.testing.assert_close(gmsd(x, y), gmsd(x.contiguous(), y.contiguous()), rtol=0, atol=1e-15)

    def test_values_beyond_data_range_are_scored_as_given(self) -> None:
        # 2x on [0, 1] images exceeds data_range=1; unclamped it is exactly the [0, 0.5] problem scaled by 2.
        gen = torch.Generator().manual_seed(4)
        x, y = torch.rand(2, 3, 30, 30, generator=gen), torch.rand(2, 3, 30, 30, generator=gen)
        torch.testing.assert_close(gmsd(2 * x, 2 * y), gmsd(x, y, data_range=0.5), rtol=0, atol=1e-14)
        # 255 x is rounded in float32: scale in float64, where the only differences are rounding.
        x64, y64 = x.double(), y.double()
        tolerance = 2 * gmsd_error_bound(U64)
        torch.testing.assert_close(gmsd(255 * x64, 255 * y64, 255.0), gmsd(x64, y64), rtol=0, atol=tolerance)

    def test_float64_input_is_accepted(self) -> None:
        x = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(5))
        assert gmsd(x.double(), x.flip(-1).double()).item() == gmsd(x, x.flip(-1)).item()

    def test_exported_lazily(self) -> None:
        assert gvcore.gmsd is gmsd
        assert gmsd.higher_is_better is False  # type: ignore[attr-defined]

    @pytest.mark.numeric
    @pytest.mark.parametrize("kind", ["gray", "rgb"])
    def test_matches_piq_in_float64(self, piq: ModuleType, kind: str) -> None:
        # piq converts RGB to the same luma itself; fed float64 it computes in float64 like gvcore.
        x, y = degraded_pair(IMAGES[kind]())
        ours = gmsd(x, y)
        theirs = piq.gmsd(x.double(), y.double(), reduction="none")
        assert (ours - theirs).abs().max().item() <= 2 * gmsd_error_bound(U64)

    @pytest.mark.numeric
    @pytest.mark.parametrize("kind", ["gray", "rgb"])
    def test_matches_piq_in_float32(self, piq: ModuleType, kind: str) -> None:
        # The usual piq call: float32 throughout. Bound: piq's float32 error plus ours in float64.
        x, y = degraded_pair(IMAGES[kind]())
        ours = gmsd(x, y)
        theirs = piq.gmsd(x, y, reduction="none").double()
        assert (ours - theirs).abs().max().item() <= gmsd_error_bound(U32) + gmsd_error_bound(U64)

    @pytest.mark.numeric
    def test_odd_size_matches_piq(self, piq: ModuleType) -> None:
        # 255x200: piq pads max(H % 2, W % 2) = 1 zero row AND column; its pooling drops the extra column.
        x, y = degraded_pair(astronaut(slice(0, 255), slice(100, 300)))
        theirs = piq.gmsd(x.double(), y.double(), reduction="none")
        assert (gmsd(x, y) - theirs).abs().max().item() <= 2 * gmsd_error_bound(U64)

    @pytest.mark.cuda
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_matches_cpu(self) -> None:
        x, y = degraded_pair(astronaut())
        on_cuda = gmsd(x.cuda(), y.cuda())
        assert on_cuda.device.type == "cuda"
        assert on_cuda.dtype == torch.float64
        assert (on_cuda.cpu() - gmsd(x, y)).abs().max().item() <= 2 * gmsd_error_bound(U64)


class TestMsSsim:
    def test_smoke(self) -> None:
        reference = camera(slice(0, 161), slice(0, 161))
        score = ms_ssim(noise(reference, 0.1), reference)
        assert score.shape == (1,)
        assert score.dtype == torch.float64
        assert 0 < score.item() < 1

    def test_minimum_size_is_161(self) -> None:
        assert MS_SSIM_MIN_SIZE == 161  # (11 - 1) * 2**4 + 1: the 5th scale is ceil(161 / 16) = 11 wide
        x = torch.rand(1, 1, 161, 300, generator=torch.Generator().manual_seed(6))
        assert ms_ssim(x, x.flip(-1)).shape == (1,)
        for shape in [(1, 1, 160, 300), (1, 1, 300, 160)]:
            small = torch.rand(shape)
            with pytest.raises(ValueError, match=rf"at least 161x161 pixels .*; got {shape[2]}x{shape[3]}"):
                ms_ssim(small, small)

    @pytest.mark.parametrize("channels", [1, 3])
    def test_batch_gives_the_single_image_values(self, channels: int) -> None:
        gen = torch.Generator().manual_seed(7)
        y = torch.rand(2, channels, 161, 170, generator=gen)
        x = (y + 0.2 * torch.rand(2, channels, 161, 170, generator=gen)).clamp(0, 1)
        batch = ms_ssim(x, y)
        assert batch.shape == (2,)
        singles = torch.cat([ms_ssim(x[i : i + 1], y[i : i + 1]) for i in range(2)])
        # a batch may sum in another order than one image (the CPU's vector width, torch's kernels): both results
        # are within the rounding bound of the exact value, not equal to the last bit
        for a, b in zip(batch.tolist(), singles.tolist(), strict=True):
            assert abs(a - b) <= 2 * ms_ssim_error_bound(U64, b)

    @pytest.mark.parametrize("case", range(len(bad_inputs(MS_SSIM_MIN_SIZE))))
    def test_refuses_bad_inputs(self, case: int) -> None:
        x, y, error, message = bad_inputs(MS_SSIM_MIN_SIZE)[case]
        with pytest.raises(error, match=message):
            ms_ssim(x, y)

    def test_refuses_bad_data_range(self) -> None:
        x = torch.rand(1, 1, 161, 161)
        with pytest.raises(ValueError, match="data_range must be a finite number > 0; got 0"):
            ms_ssim(x, x, data_range=0)

    def test_identical_images_score_one(self) -> None:
        x = torch.rand(2, 3, 170, 181, generator=torch.Generator().manual_seed(8))
        assert ms_ssim(x, x).tolist() == [1.0, 1.0]

    def test_anti_correlated_images_score_zero_not_nan(self) -> None:
        y = torch.rand(1, 1, 161, 161, generator=torch.Generator().manual_seed(9))
        assert ms_ssim(1 - y, y).tolist() == [0.0]

    @pytest.mark.parametrize("degrade", [blur, noise], ids=["blur", "noise"])
    def test_falls_with_the_degradation(self, degrade: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
        reference = camera(slice(100, 276), slice(150, 326))
        levels = [0.5, 1.0, 2.0, 3.0] if degrade is blur else [0.01, 0.03, 0.1, 0.3]
        distorted = torch.cat([degrade(reference, s) for s in levels])
        scores = ms_ssim(distorted, reference.expand_as(distorted)).tolist()
        assert scores == sorted(scores, reverse=True)
        assert len(set(scores)) == len(scores)

    def test_non_contiguous_input(self) -> None:
        gen = torch.Generator().manual_seed(10)
        big_y = torch.rand(1, 3, 340, 330, generator=gen)
        y = big_y[..., ::2, 1::2]
        x = (y + 0.1).transpose(-1, -2).contiguous().transpose(-1, -2)
        assert not x.is_contiguous()
        assert not y.is_contiguous()
        torch.testing.assert_close(ms_ssim(x, y), ms_ssim(x.contiguous(), y.contiguous()), rtol=0, atol=1e-15)

    def test_values_beyond_data_range_are_scored_as_given(self) -> None:
        gen = torch.Generator().manual_seed(11)
        y = torch.rand(1, 1, 161, 161, generator=gen)
        x = (y + 0.3 * torch.rand(1, 1, 161, 161, generator=gen)).clamp(0, 1)
        torch.testing.assert_close(ms_ssim(2 * x, 2 * y), ms_ssim(x, y, data_range=0.5), rtol=0, atol=1e-14)

    def test_exported_lazily(self) -> None:
        assert gvcore.ms_ssim is ms_ssim
        assert ms_ssim.higher_is_better is True  # type: ignore[attr-defined]

    @pytest.mark.numeric
    @pytest.mark.parametrize("kind", ["gray", "rgb"])
    def test_matches_piq_on_the_same_luma(self, piq: ModuleType, kind: str) -> None:
        # piq averages per-channel MS-SSIM over R, G, B; the paper scores one luminance channel, so piq is fed
        # the luma. 192 stays even through four poolings (down to 12): piq's top/left padding never applies.
        x, y = degraded_pair(IMAGES[kind]())
        ours = ms_ssim(x, y)
        theirs = piq.multi_scale_ssim(luma64(x), luma64(y), reduction="none")
        for a, b in zip(ours.tolist(), theirs.tolist()):
            assert abs(a - b) <= 2 * ms_ssim_error_bound(U64, b)

    @pytest.mark.numeric
    def test_odd_size_matches_piq_mirrored(self, piq: ModuleType) -> None:
        # 165 -> 83 -> 42 -> 21 -> 11: odd sides at three poolings. The authors repeat the last row / column
        # (bottom / right), piq the first (top / left); for a square image piq on the image flipped both ways
        # pools exactly the flipped pixels of ours at every scale, and a symmetric window's map mean does not
        # see the flip.
        x, y = degraded_pair(camera(slice(100, 265), slice(120, 285)))
        ours = ms_ssim(x, y)
        theirs = piq.multi_scale_ssim(luma64(x).flip(-1, -2), luma64(y).flip(-1, -2), reduction="none")
        for a, b in zip(ours.tolist(), theirs.tolist()):
            assert abs(a - b) <= 2 * ms_ssim_error_bound(U64, b)

    @pytest.mark.cuda
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    def test_cuda_matches_cpu(self) -> None:
        x, y = degraded_pair(astronaut())
        on_cuda = ms_ssim(x.cuda(), y.cuda())
        assert on_cuda.device.type == "cuda"
        assert on_cuda.dtype == torch.float64
        for a, b in zip(on_cuda.tolist(), ms_ssim(x, y).tolist()):
            assert abs(a - b) <= 2 * ms_ssim_error_bound(U64, b)
