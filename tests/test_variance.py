"""gvcore.variance: patch variance against unfold + torch.var, strides, precision, errors, gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gvcore.variance import patch_variance, variance_maps
from tests.official_gv_reference import reference_variance_maps


def _unfold_var(x: torch.Tensor, p: int, stride: int, unbiased: bool = True) -> torch.Tensor:
    b, c, h, w = x.shape
    tiles = F.unfold(x.reshape(b * c, 1, h, w), kernel_size=p, stride=stride)
    out_h, out_w = (h - p) // stride + 1, (w - p) // stride + 1
    return torch.var(tiles, dim=1, unbiased=unbiased).reshape(b, c, out_h, out_w)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 2, 13, 21), (3, 1, 8, 9)])
@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("unbiased", [True, False])
def test_non_overlapping_matches_unfold(shape: tuple[int, ...], p: int, unbiased: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    got = patch_variance(x, p, unbiased=unbiased)
    assert got.shape == (shape[0], shape[1], shape[2] // p, shape[3] // p)
    torch.testing.assert_close(got, _unfold_var(x, p, p, unbiased))


@pytest.mark.parametrize(("p", "stride"), [(4, 1), (4, 2), (3, 5), (8, 4)])
def test_strided_matches_unfold(p: int, stride: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 17, 19)
    got = patch_variance(x, p, stride)
    torch.testing.assert_close(got, _unfold_var(x, p, stride))
    assert got.dtype == torch.float32


def test_stride_equal_to_patch_is_the_default() -> None:
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(patch_variance(x, 4, 4), patch_variance(x, 4))


def test_remainder_is_dropped() -> None:
    x = torch.zeros(1, 1, 11, 11)
    x[..., 8:, :] = torch.randn(3, 11)  # only in the dropped rows
    x[..., :, 8:] = torch.randn(11, 3)
    assert patch_variance(x, 4).abs().max().item() == 0.0


def test_overlapping_precision_with_large_offset() -> None:
    # E[x^2] - E[x]^2 in float32 would lose everything here; float64 after centring keeps ~1e-12 relative
    torch.manual_seed(2)
    x = 1000.0 + 1e-3 * torch.randn(1, 1, 24, 24)
    got = patch_variance(x, 8, 2)
    want = _unfold_var(x.double(), 8, 2)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)
    # the tiled path is a two-pass variance in the input dtype: relative error ~ (eps32 * |mean| / std)^2
    y = 1.0 + 1e-3 * torch.randn(1, 1, 24, 24)  # |mean| / std = 1e3
    torch.testing.assert_close(
        patch_variance(y, 8).double(), _unfold_var(y.double(), 8, 8), rtol=1e-5, atol=0
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_float32(dtype: torch.dtype) -> None:
    x = torch.rand(1, 3, 16, 16).to(dtype)
    for stride in (None, 3):
        got = patch_variance(x, 8, stride)
        assert got.dtype == torch.float32
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, patch_variance(x.float(), 8, stride))


def test_variance_maps_match_reference() -> None:
    torch.manual_seed(3)
    x = torch.rand(2, 3, 21, 18, dtype=torch.float64)
    for kwargs in ({}, {"operator": "scharr", "padding": "replicate"}, {"gray": False}, {"stride": 3}):
        maps_kw = {k: v for k, v in kwargs.items() if k != "stride"}
        vx, vy = variance_maps(x, 4, **kwargs)  # type: ignore[arg-type]
        rx, ry = reference_variance_maps(x, 4, **kwargs)  # type: ignore[arg-type]
        torch.testing.assert_close(vx.flatten(2), rx)
        torch.testing.assert_close(vy.flatten(2), ry)
        assert maps_kw is not None


def test_variance_maps_shapes_and_non_contiguous() -> None:
    x = torch.rand(2, 3, 20, 17)
    vx, vy = variance_maps(x)
    assert vx.shape == vy.shape == (2, 1, 2, 2)
    t = torch.rand(2, 3, 17, 20).transpose(2, 3)
    torch.testing.assert_close(variance_maps(t)[0], variance_maps(t.contiguous())[0])


def test_gradcheck() -> None:
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: patch_variance(t, 3), (x,))
    assert torch.autograd.gradcheck(lambda t: patch_variance(t, 3, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: variance_maps(t, 2, gray=False)[1], (x,))


class TestErrors:
    def test_patch_size(self) -> None:
        x = torch.rand(1, 1, 8, 8)
        with pytest.raises(ValueError, match="patch_size must be >= 2; got 1"):
            patch_variance(x, 1)
        with pytest.raises(TypeError, match="patch_size must be an int"):
            patch_variance(x, 2.0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="stride must be >= 1; got 0"):
            patch_variance(x, 2, 0)
        with pytest.raises(ValueError, match="patch_size must be >= 2"):
            variance_maps(torch.rand(1, 3, 8, 8), 1)

    def test_inputs(self) -> None:
        with pytest.raises(ValueError, match="at least 8x8"):
            patch_variance(torch.rand(1, 1, 7, 9))
        with pytest.raises(ValueError, match="at least 8x8"):
            variance_maps(torch.rand(1, 3, 9, 7))
        with pytest.raises(TypeError, match="floating-point"):
            patch_variance(torch.ones(1, 1, 8, 8, dtype=torch.int64))
        with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
            patch_variance(torch.rand(8, 8))
        with pytest.raises(ValueError, match="operator must be one of"):
            variance_maps(torch.rand(1, 3, 8, 8), operator="sobol")


@pytest.mark.parametrize(
    "kwargs", [{}, {"gray": False}, {"operator": "central", "normalized": True}, {"unbiased": False}]
)
@pytest.mark.parametrize("shape", [(2, 3, 19, 21), (1, 1, 8, 8)])
def test_fused_path_equals_plain_path(kwargs: dict, shape: tuple[int, ...]) -> None:
    # without autograd variance_maps takes the fused kernel; with it, gradient_maps + patch_variance
    torch.manual_seed(4)
    x = torch.rand(*shape, dtype=torch.float64)
    fused = variance_maps(x, 4, **kwargs)
    plain = variance_maps(x.clone().requires_grad_(), 4, **kwargs)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b.detach())
    half = variance_maps(x.half(), 4, **kwargs)
    assert half[0].dtype == torch.float32
    torch.testing.assert_close(half[0], variance_maps(x.half().float(), 4, **kwargs)[0])
