"""gvcore.resize.imresize against an independent per-row MATLAB re-derivation and stored reference values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gvcore.resize import cubic, imresize, resize_matrix
from tests.reference import inputs as INPUTS
from tests.reference import matlab_imresize as REF

REF_DIR = Path(__file__).parent / "reference"


VALUES = json.loads((REF_DIR / "values.json").read_text())
SCALES = [1 / 2, 1 / 3, 1 / 4, 2, 3, 4]


class TestStoredValues:
    @pytest.mark.parametrize("case", VALUES["imresize"], ids=lambda c: f"seed{c['seed']}")
    def test_matches_stored_reference(self, case: dict) -> None:
        img = torch.from_numpy(INPUTS.float_image(case["seed"], case["height"], case["width"], channels=1))[
            None
        ]
        if "size" in case:
            kwargs: dict = {"size": tuple(case["size"])}
        else:
            kwargs = {"scale": case["scale"]}
        expected = torch.tensor(case["output"], dtype=torch.float64)
        out64 = imresize(img, **kwargs)[0, 0]
        out32 = imresize(img.float(), **kwargs)[0, 0]
        assert out64.shape == expected.shape
        torch.testing.assert_close(out64, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(out32.double(), expected, rtol=0, atol=1e-5)


class TestLiveReference:
    @pytest.mark.parametrize("scale", SCALES)
    @pytest.mark.parametrize("hw", [(17, 23), (10, 7), (5, 4)])
    def test_batch_matches_per_row_reference(self, scale: float, hw: tuple[int, int]) -> None:
        x = np.stack([INPUTS.float_image(s, *hw) for s in (1, 2)])
        expected = torch.from_numpy(REF.imresize_batch_reference(x, scale))
        out64 = imresize(torch.from_numpy(x), scale)
        out32 = imresize(torch.from_numpy(x).float(), scale)
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out64, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(out32.double(), expected, rtol=0, atol=1e-5)

    @pytest.mark.parametrize("size", [(5, 20), (20, 5), (9, 9), (3, 30)])
    def test_output_size_uses_per_axis_scales(self, size: tuple[int, int]) -> None:
        x = INPUTS.float_image(3, 9, 12)
        expected = torch.from_numpy(REF.imresize_batch_reference(x[None], size=size))
        out = imresize(torch.from_numpy(x)[None], size=size)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)

    def test_no_antialiasing(self) -> None:
        x = INPUTS.float_image(4, 13, 11)
        expected = torch.from_numpy(REF.imresize_batch_reference(x[None], 1 / 3, antialiasing=False))
        out = imresize(torch.from_numpy(x)[None], 1 / 3, antialiasing=False)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
        assert not torch.allclose(out, imresize(torch.from_numpy(x)[None], 1 / 3))


class TestHandComputed:
    def test_cubic_kernel(self) -> None:
        t = torch.tensor([-2.5, -1.5, -0.5, 0.0, 0.25, 1.0, 1.75, 2.0], dtype=torch.float64)
        expected = [0.0, -0.0625, 0.5625, 1.0, 0.8671875, 0.0, -0.0234375, 0.0]
        assert cubic(t).tolist() == expected

    def test_half_scale_interior_weights(self) -> None:
        # MATLAB's well-known x1/2 antialiased bicubic taps: 0.5 * cubic(0.5 * d), d = +-0.5, ..., +-3.5
        m = resize_matrix(16, 8, 0.5)
        taps = [
            -0.01171875,
            -0.03515625,
            0.11328125,
            0.43359375,
            0.43359375,
            0.11328125,
            -0.03515625,
            -0.01171875,
        ]
        torch.testing.assert_close(m[3, 3:11], torch.tensor(taps, dtype=torch.float64), rtol=0, atol=1e-15)
        assert m[3, :3].abs().sum() == 0
        assert m[3, 11:].abs().sum() == 0

    def test_mirror_folds_into_matrix(self) -> None:
        # first output of a x1/2 resize: u = 1.5, taps at 1-based -2..5 mirror to 3,2,1,1,2,3,4,5
        m = resize_matrix(16, 8, 0.5)
        t = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
        expected = [t[2] + t[3], t[1] + t[3], t[0] + t[2], t[1], t[0]] + [0.0] * 11
        torch.testing.assert_close(m[0], torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15)

    def test_scale_one_is_identity(self) -> None:
        x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
        torch.testing.assert_close(imresize(x, 1), x, rtol=0, atol=1e-15)

    def test_constant_image_stays_constant(self) -> None:
        x = torch.full((1, 2, 11, 13), 0.3, dtype=torch.float64)
        for s in SCALES:
            torch.testing.assert_close(imresize(x, s), torch.full_like(imresize(x, s), 0.3))

    @pytest.mark.parametrize(("hw", "scale", "out"), [((10, 7), 1 / 3, (4, 3)), ((7, 6), 4, (28, 24))])
    def test_output_size_is_ceil(self, hw, scale, out) -> None:
        assert imresize(torch.rand(1, 1, *hw), scale).shape[-2:] == out


class TestDtypesAndLayout:
    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
    def test_dtype_follows_input(self, dtype: torch.dtype) -> None:
        x = torch.rand(1, 3, 8, 8).to(dtype)
        y = imresize(x, 0.5)
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), imresize(x.float(), 0.5), rtol=0, atol=1e-2)

    def test_non_contiguous_input(self) -> None:
        x = torch.rand(2, 9, 11, 3).permute(0, 3, 1, 2)
        torch.testing.assert_close(imresize(x, 0.5), imresize(x.contiguous(), 0.5))

    def test_batch_equals_single(self) -> None:
        x = torch.rand(3, 2, 10, 9)
        single = torch.cat([imresize(x[i : i + 1], 3) for i in range(3)])
        torch.testing.assert_close(imresize(x, 3), single)

    @pytest.mark.cuda
    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda_matches_cpu(self) -> None:
        x = torch.rand(2, 3, 17, 13, dtype=torch.float64)
        for s in SCALES:
            torch.testing.assert_close(imresize(x.cuda(), s).cpu(), imresize(x, s), rtol=0, atol=1e-10)


class TestErrors:
    @pytest.mark.parametrize("scale", [0, -2, float("nan"), float("inf")])
    def test_bad_scale(self, scale: float) -> None:
        with pytest.raises(ValueError, match="scale must be a finite number > 0"):
            imresize(torch.rand(1, 1, 4, 4), scale)

    def test_scale_type(self) -> None:
        with pytest.raises(TypeError, match="scale must be a positive number"):
            imresize(torch.rand(1, 1, 4, 4), "2")  # type: ignore[arg-type]

    def test_scale_and_size_exclusive(self) -> None:
        with pytest.raises(ValueError, match="exactly one of scale and size"):
            imresize(torch.rand(1, 1, 4, 4), 2, size=(8, 8))
        with pytest.raises(ValueError, match="exactly one of scale and size"):
            imresize(torch.rand(1, 1, 4, 4))

    @pytest.mark.parametrize("size", [(0, 4), (4,), (4, 2.5), "44"])
    def test_bad_size(self, size) -> None:
        with pytest.raises(ValueError, match="size must be two positive ints"):
            imresize(torch.rand(1, 1, 4, 4), size=size)

    @pytest.mark.parametrize(
        ("scale", "size"), [(1e6, None), (7000.0, None), (None, (70_000, 4)), (None, (20_000, 20_000))]
    )
    def test_absurd_output_is_refused_before_allocating(self, scale, size) -> None:
        """A scale factor that would allocate terabytes is refused with a message, not a crash."""
        with pytest.raises(ValueError, match=r"would be \d+x\d+ pixels, over the limit"):
            imresize(torch.rand(1, 1, 10, 10), scale, size=size)

    def test_large_but_sane_output_is_allowed(self) -> None:
        assert imresize(torch.rand(1, 1, 4, 4), 1000).shape == (1, 1, 4000, 4000)

    def test_integer_tensor(self) -> None:
        with pytest.raises(TypeError, match="floating-point"):
            imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 2)

    def test_wrong_rank(self) -> None:
        with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\)"):
            imresize(torch.rand(3, 4, 4), 2)

    def test_not_a_tensor(self) -> None:
        with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
            imresize(np.zeros((1, 1, 4, 4)), 2)  # type: ignore[arg-type]

    def test_antialiasing_type(self) -> None:
        with pytest.raises(TypeError, match="antialiasing must be a bool"):
            imresize(torch.rand(1, 1, 4, 4), 0.5, antialiasing="yes")  # type: ignore[arg-type]
