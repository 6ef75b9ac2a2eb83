from __future__ import annotations

import pytest
import torch

from gvcore._validation import check_floating_image, check_positive_int, check_same_shape
from gvcore.color import GRAY_WEIGHTS, rgb_to_y, to_gray


class TestToGray:
    def test_paper_weights_by_hand(self) -> None:
        x = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
        expected = 0.2989 * 0.2 + 0.5870 * 0.4 + 0.1140 * 0.6
        assert to_gray(x).shape == (1, 1, 1, 1)
        assert to_gray(x).item() == pytest.approx(expected, abs=1e-7)

    def test_weights_sum_is_kept_as_published(self) -> None:
        assert sum(GRAY_WEIGHTS) == pytest.approx(0.9999)

    def test_single_channel_passes_through(self) -> None:
        x = torch.rand(2, 1, 4, 5)
        assert to_gray(x) is x

    def test_dtype_and_device_follow_input(self) -> None:
        x = torch.rand(1, 3, 3, 3, dtype=torch.float64)
        assert to_gray(x).dtype == torch.float64

    @pytest.mark.parametrize(
        ("bad", "error", "match"),
        [
            (torch.rand(3, 4, 4), ValueError, "shape \\(B, C, H, W\\)"),
            (torch.rand(1, 2, 4, 4), ValueError, "1 or 3 channels"),
            (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), TypeError, "floating-point"),
            ([[1.0]], TypeError, "torch.Tensor"),
        ],
    )
    def test_bad_input(self, bad: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            to_gray(bad)  # type: ignore[arg-type]

    def test_bad_weights(self) -> None:
        with pytest.raises(ValueError, match="weights"):
            to_gray(torch.rand(1, 3, 2, 2), weights=(0.5, 0.5))  # type: ignore[arg-type]


class TestRgbToY:
    def test_bt601_range(self) -> None:
        assert rgb_to_y(torch.zeros(1, 3, 1, 1)).item() == pytest.approx(16.0)
        assert rgb_to_y(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235.0, abs=1e-4)

    def test_without_offset(self) -> None:
        x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
        assert torch.allclose(rgb_to_y(x) - 16.0, rgb_to_y(x, offset=False))

    def test_requires_rgb(self) -> None:
        with pytest.raises(ValueError, match="3 channels"):
            rgb_to_y(torch.rand(1, 1, 4, 4))


class TestValidation:
    def test_positive_int(self) -> None:
        assert check_positive_int("patch_size", 8, minimum=2) == 8
        with pytest.raises(ValueError, match="patch_size must be >= 2; got 1"):
            check_positive_int("patch_size", 1, minimum=2)
        with pytest.raises(TypeError, match="patch_size must be an int"):
            check_positive_int("patch_size", 8.0)
        with pytest.raises(TypeError, match="patch_size must be an int"):
            check_positive_int("patch_size", True)

    def test_min_size(self) -> None:
        with pytest.raises(ValueError, match="at least 8x8 pixels; got 4x9"):
            check_floating_image("sr", torch.rand(1, 3, 4, 9), min_size=8)

    def test_same_shape(self) -> None:
        with pytest.raises(ValueError, match="sr and hr must have the same shape"):
            check_same_shape("sr", torch.rand(1, 3, 4, 4), "hr", torch.rand(1, 3, 4, 5))
