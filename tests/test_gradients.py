"""gvcore.gradients: hand-computed Sobel values, equality with F.conv2d, options, errors, gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gvcore.gradients import OPERATORS, gradient_kernels, gradient_maps, smoothing_weights


def _conv_reference(x: torch.Tensor, operator: str, padding: str, normalized: bool = False):
    mode = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect"}[padding]
    b, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode=mode).reshape(b * c, 1, h + 2, w + 2)
    kx, ky = gradient_kernels(operator, normalized, dtype=x.dtype)
    return tuple(F.conv2d(xp, k.view(1, 1, 3, 3)).reshape(b, c, h, w) for k in (kx, ky))


class TestHandComputed:
    def test_impulse_gives_flipped_kernels(self) -> None:
        x = torch.zeros(1, 1, 5, 5)
        x[0, 0, 2, 2] = 1.0
        gx, gy = gradient_maps(x)
        expected_gx = torch.zeros(5, 5)
        expected_gx[1:4, 1:4] = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
        expected_gy = torch.zeros(5, 5)
        expected_gy[1:4, 1:4] = torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]])
        torch.testing.assert_close(gx[0, 0], expected_gx, rtol=0, atol=0)
        torch.testing.assert_close(gy[0, 0], expected_gy, rtol=0, atol=0)

    def test_ramp_with_zero_padding(self) -> None:
        # x[i, j] = j; zero padding makes the borders differ from the interior value 8 (= 4 * 2)
        x = torch.arange(5.0).repeat(5, 1).view(1, 1, 5, 5)
        gx, gy = gradient_maps(x)
        row_edge = [3.0, 6.0, 6.0, 6.0, -9.0]
        row_mid = [4.0, 8.0, 8.0, 8.0, -12.0]
        assert gx[0, 0].tolist() == [row_edge, row_mid, row_mid, row_mid, row_edge]
        smooth = [1.0, 4.0, 8.0, 12.0, 11.0]  # [1, 2, 1] across each row, zero padded
        zeros = [0.0] * 5
        assert gy[0, 0].tolist() == [[-v for v in smooth], zeros, zeros, zeros, smooth]

    def test_kernels(self) -> None:
        kx, ky = gradient_kernels("sobel")
        assert kx.tolist() == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
        assert ky.tolist() == [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
        kx, ky = gradient_kernels("scharr")
        assert kx.tolist() == [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]
        assert ky.tolist() == [[3, 10, 3], [0, 0, 0], [-3, -10, -3]]
        kx, ky = gradient_kernels("central")
        assert kx.tolist() == [[0, 0, 0], [-1, 0, 1], [0, 0, 0]]
        assert ky.tolist() == [[0, 1, 0], [0, 0, 0], [0, -1, 0]]
        assert gradient_kernels("sobel", normalized=True)[0].abs().sum().item() == 1.0
        assert smoothing_weights("scharr", normalized=True) == (3 / 32, 10 / 32, 3 / 32)

    def test_kernel_device_and_dtype(self) -> None:
        kx, ky = gradient_kernels(dtype=torch.float64, device="cpu")
        assert kx.dtype == ky.dtype == torch.float64
        assert kx.device.type == "cpu"


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("padding", ["zeros", "replicate", "reflect"])
@pytest.mark.parametrize("gray", [True, False])
def test_matches_conv2d(operator: str, padding: str, gray: bool) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    gx, gy = gradient_maps(x, operator=operator, padding=padding, gray=gray)  # type: ignore[arg-type]
    source = 0.2989 * x[:, 0:1] + 0.5870 * x[:, 1:2] + 0.1140 * x[:, 2:3] if gray else x
    rx, ry = _conv_reference(source, operator, padding)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gy, ry)


def test_shapes_dtype_normalized() -> None:
    x = torch.rand(2, 3, 6, 5)
    gx, gy = gradient_maps(x)
    assert gx.shape == gy.shape == (2, 1, 6, 5)
    assert gx.dtype == torch.float32
    gx, _ = gradient_maps(x, gray=False)
    assert gx.shape == (2, 3, 6, 5)
    gxn, _ = gradient_maps(x, normalized=True)
    torch.testing.assert_close(gxn * 8, gradient_maps(x)[0])
    x1 = torch.rand(1, 1, 4, 4)
    torch.testing.assert_close(gradient_maps(x1)[0], _conv_reference(x1, "sobel", "zeros")[0])


def test_non_contiguous() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 10)
    for view in (x.transpose(2, 3), x.contiguous(memory_format=torch.channels_last), x[..., ::2, 1::2]):
        got = gradient_maps(view)
        want = gradient_maps(view.contiguous())
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])


def test_gradcheck() -> None:
    x = torch.rand(1, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gradient_maps(t), (x,))
    assert torch.autograd.gradcheck(lambda t: gradient_maps(t, padding="reflect", gray=False), (x,))


class TestErrors:
    def test_bad_options(self) -> None:
        x = torch.rand(1, 3, 4, 4)
        with pytest.raises(ValueError, match="operator must be one of 'sobel', 'scharr', 'central'"):
            gradient_maps(x, operator="prewitt")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="padding must be one of"):
            gradient_maps(x, padding="circular")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="operator"):
            gradient_kernels("laplace")  # type: ignore[arg-type]

    def test_bad_inputs(self) -> None:
        with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
            gradient_maps(torch.rand(3, 4, 4))
        with pytest.raises(TypeError, match="floating-point"):
            gradient_maps(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
        with pytest.raises(ValueError, match="1 or 3 channels"):
            gradient_maps(torch.rand(1, 2, 4, 4))
        with pytest.raises(ValueError, match="at least 2x2"):
            gradient_maps(torch.rand(1, 3, 1, 4), padding="reflect")
        with pytest.raises(TypeError, match=r"torch\.Tensor"):
            gradient_maps([[1.0]])  # type: ignore[arg-type]
