"""gvcore.loss: equality with the official formula (value and gradient), options, errors, backends."""

from __future__ import annotations

import sys
import types

import pytest
import torch

import gvcore.loss as loss_module
from gvcore.loss import GradientVarianceLoss, gradient_variance_loss
from tests.official_gv_reference import official_gv_loss, reference_loss

SHAPES = [(2, 3, 16, 16), (3, 3, 21, 27), (1, 3, 9, 8), (2, 3, 8, 17), (2, 1, 19, 12)]


def _pair(shape: tuple[int, ...], dtype: torch.dtype = torch.float32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    hr = torch.rand(shape, generator=gen, dtype=dtype)
    sr = (hr + 0.1 * torch.randn(shape, generator=gen, dtype=dtype)).requires_grad_()
    return sr, hr


def _value_and_grad(fn, sr: torch.Tensor, hr: torch.Tensor, **kwargs):
    sr = sr.detach().requires_grad_()
    value = fn(sr, hr, **kwargs)
    (grad,) = torch.autograd.grad(value.sum(), sr)
    return value.detach(), grad


def _official(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    if sr.shape[1] == 1:  # the official code is RGB; a gray input is its own gray
        return reference_loss(sr, hr)
    return official_gv_loss(sr, hr)


class TestOfficialEquality:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_float32(self, shape: tuple[int, ...]) -> None:
        sr, hr = _pair(shape)
        value, grad = _value_and_grad(gradient_variance_loss, sr, hr)
        ref_value, ref_grad = _value_and_grad(_official, sr.double(), hr.double())
        torch.testing.assert_close(value, ref_value.float(), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grad, ref_grad.float(), rtol=1e-4, atol=1e-7)
        assert value.dtype == torch.float32
        assert grad.dtype == torch.float32

    @pytest.mark.parametrize("shape", SHAPES[:3])
    def test_float64_exact(self, shape: tuple[int, ...]) -> None:
        sr, hr = _pair(shape, torch.float64)
        value, grad = _value_and_grad(gradient_variance_loss, sr, hr)
        ref_value, ref_grad = _value_and_grad(_official, sr, hr)
        torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-15)

    def test_non_contiguous(self) -> None:
        sr, hr = _pair((2, 3, 18, 20))
        views = {
            "transposed": lambda t: t.transpose(2, 3),
            "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
            "strided": lambda t: t[:, :, ::2, 1:],
            "channel_flip": lambda t: t.flip(1),
        }
        for name, view in views.items():
            v_sr, v_hr = view(sr.detach()), view(hr)
            value, grad = _value_and_grad(gradient_variance_loss, v_sr, v_hr)
            ref_value, ref_grad = _value_and_grad(official_gv_loss, v_sr.double(), v_hr.double())
            torch.testing.assert_close(value, ref_value.float(), rtol=1e-5, atol=1e-7, msg=name)
            torch.testing.assert_close(grad, ref_grad.float(), rtol=1e-4, atol=1e-7, msg=name)

    def test_gradcheck_fast_path(self) -> None:
        sr, hr = _pair((2, 3, 9, 11), torch.float64)
        assert torch.autograd.gradcheck(lambda t: gradient_variance_loss(t, hr, patch_size=4), (sr,))
        assert torch.autograd.gradcheck(
            lambda t: gradient_variance_loss(t, hr, patch_size=3, reduction="none", gray=False), (sr,)
        )

    @pytest.mark.slow
    def test_gradcheck_plain_path(self) -> None:
        sr, hr = _pair((1, 3, 8, 9), torch.float64)
        for kwargs in (
            {"padding": "replicate"},
            {"stride": 2},
            {"padding": "reflect", "distance": "charbonnier"},
        ):
            assert torch.autograd.gradcheck(
                lambda t, kw=kwargs: gradient_variance_loss(t, hr, 4, **kw), (sr,)
            )


OPTIONS = [
    {"unbiased": False},
    {"gray": False},
    {"operator": "scharr"},
    {"operator": "central"},
    {"padding": "replicate"},
    {"padding": "reflect", "operator": "scharr"},
    {"stride": 2},
    {"stride": 3, "gray": False},
    {"distance": "l1"},
    {"distance": "charbonnier", "charbonnier_eps": 1e-2},
    {"relative": True},
    {"relative": True, "distance": "l1", "eps": 1e-3},
    {"patch_sizes": (2, 4, 8)},
    {"patch_sizes": [3, 5], "padding": "replicate"},
    {"reduction": "sum"},
    {"reduction": "none", "distance": "charbonnier"},
]


@pytest.mark.parametrize("kwargs", OPTIONS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_options_match_reference(kwargs: dict) -> None:
    sr, hr = _pair((2, 3, 17, 19), torch.float64, seed=5)
    value, grad = _value_and_grad(gradient_variance_loss, sr, hr, patch_size=4, **kwargs)
    ref_value, ref_grad = _value_and_grad(reference_loss, sr, hr, patch_size=4, **kwargs)
    torch.testing.assert_close(value, ref_value, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-8, atol=1e-14)


def test_multiscale_is_mean_of_scales() -> None:
    sr, hr = _pair((2, 3, 16, 16))
    multi = gradient_variance_loss(sr, hr, patch_sizes=(2, 4, 8))
    single = [gradient_variance_loss(sr, hr, patch_size=p) for p in (2, 4, 8)]
    torch.testing.assert_close(multi, sum(single) / 3)


@pytest.mark.parametrize(
    "kwargs", [{}, {"distance": "l1"}, {"distance": "charbonnier"}, {"relative": True}, {"stride": 3}]
)
def test_identical_images_give_zero(kwargs: dict) -> None:
    hr = torch.rand(2, 3, 16, 16)
    assert gradient_variance_loss(hr, hr, **kwargs).item() == 0.0
    assert GradientVarianceLoss(**kwargs)(hr, hr.clone()).item() == 0.0


def test_reductions() -> None:
    sr, hr = _pair((4, 3, 16, 24))
    none = gradient_variance_loss(sr, hr, reduction="none")
    assert none.shape == (4,)
    torch.testing.assert_close(none.mean(), gradient_variance_loss(sr, hr))
    torch.testing.assert_close(none.sum(), gradient_variance_loss(sr, hr, reduction="sum"))
    # per-sample values do not depend on the rest of the batch
    torch.testing.assert_close(none[1:2], gradient_variance_loss(sr[1:2], hr[1:2], reduction="none"))


def test_module_equals_function_and_repr() -> None:
    sr, hr = _pair((2, 3, 16, 16))
    kwargs = {"patch_size": 4, "distance": "l1", "gray": False, "relative": True, "eps": 1e-3}
    module = GradientVarianceLoss(**kwargs)
    torch.testing.assert_close(module(sr, hr), gradient_variance_loss(sr, hr, **kwargs))
    text = repr(module)
    assert "patch_size=4" in text
    assert "distance='l1'" in text
    assert "eps=0.001" in text
    assert "charbonnier_eps" not in repr(GradientVarianceLoss())
    assert list(module.parameters()) == []
    assert list(module.buffers()) == []


def test_hr_is_a_detached_target() -> None:
    sr, hr = _pair((2, 3, 16, 16))
    hr = hr.clone().requires_grad_()
    for kwargs in ({}, {"padding": "replicate"}):
        sr.grad = None
        loss = gradient_variance_loss(sr, hr, **kwargs)
        loss.backward()
        assert hr.grad is None
        assert sr.grad is not None
    swapped = gradient_variance_loss(hr, sr)  # hr requiring grad as the prediction works too
    swapped.backward()
    assert hr.grad is not None


def test_no_grad_and_inference() -> None:
    sr, hr = _pair((2, 3, 16, 16))
    with_grad = gradient_variance_loss(sr, hr)
    with torch.no_grad():
        torch.testing.assert_close(gradient_variance_loss(sr, hr), with_grad.detach())
    with torch.inference_mode():
        torch.testing.assert_close(gradient_variance_loss(sr.detach(), hr), with_grad.detach())


def test_nan_propagates() -> None:
    for kwargs in ({}, {"padding": "replicate"}):
        sr, hr = _pair((1, 3, 16, 16))
        sr = sr.detach().clone()
        sr[0, 0, 3, 3] = float("nan")
        assert torch.isnan(gradient_variance_loss(sr, hr, **kwargs))
        sr[0, 0, 3, 3] = float("inf")
        assert not torch.isfinite(gradient_variance_loss(sr, hr, **kwargs))
        assert torch.isnan(gradient_variance_loss(hr, sr, **kwargs))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype: torch.dtype) -> None:
    sr, hr = _pair((2, 3, 16, 16))
    sr_low = sr.detach().to(dtype).requires_grad_()
    loss = gradient_variance_loss(sr_low, hr.to(dtype))
    loss.backward()
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert sr_low.grad is not None
    assert sr_low.grad.dtype == dtype
    assert torch.isfinite(sr_low.grad).all()
    reference = official_gv_loss(sr_low.detach().double(), hr.to(dtype).double())
    torch.testing.assert_close(loss.double(), reference, rtol=1e-4, atol=1e-7)


def test_autocast_cpu() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sr = conv(x)
        assert sr.dtype == torch.bfloat16
        loss = gradient_variance_loss(sr, hr)
    loss.backward()
    assert torch.isfinite(loss)
    assert conv.weight.grad is not None
    assert torch.isfinite(conv.weight.grad).all()


class TestErrors:
    def test_inputs(self) -> None:
        x = torch.rand(1, 3, 16, 16)
        with pytest.raises(ValueError, match=r"sr must have shape \(B, C, H, W\)"):
            gradient_variance_loss(x[0], x[0])
        with pytest.raises(ValueError, match="sr must have 1 or 3 channels"):
            gradient_variance_loss(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16))
        with pytest.raises(ValueError, match="sr and hr must have the same shape"):
            gradient_variance_loss(x, torch.rand(1, 3, 16, 24))
        with pytest.raises(ValueError, match="hr must have 1 or 3 channels"):
            gradient_variance_loss(x, torch.rand(1, 2, 16, 16))
        with pytest.raises(ValueError, match="sr must be at least 8x8"):
            gradient_variance_loss(torch.rand(1, 3, 7, 16), torch.rand(1, 3, 7, 16))
        with pytest.raises(ValueError, match="at least 16x16"):
            gradient_variance_loss(x[..., :12], x[..., :12], patch_sizes=(4, 16))
        with pytest.raises(TypeError, match="sr must be a floating-point"):
            gradient_variance_loss(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), x[..., :8, :8])
        with pytest.raises(TypeError, match="hr must be a floating-point"):
            gradient_variance_loss(x, torch.zeros(1, 3, 16, 16, dtype=torch.int32))
        with pytest.raises(TypeError, match=r"torch\.Tensor"):
            gradient_variance_loss(x.numpy(), x)  # type: ignore[arg-type]
        assert gradient_variance_loss(torch.rand(1, 5, 8, 8), torch.rand(1, 5, 8, 8), gray=False) >= 0

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"patch_size": 1}, ValueError, "patch_size must be >= 2; got 1"),
            ({"patch_size": 8.0}, TypeError, "patch_size must be an int"),
            ({"patch_sizes": ()}, ValueError, "patch_sizes must be a non-empty sequence"),
            ({"patch_sizes": 8}, ValueError, "patch_sizes must be a non-empty sequence"),
            ({"patch_sizes": (4, 1)}, ValueError, r"patch_sizes\[\] must be >= 2"),
            ({"reduction": "avg"}, ValueError, "reduction must be one of 'mean', 'sum', 'none'; got 'avg'"),
            ({"distance": "l2"}, ValueError, "distance must be one of 'mse', 'l1', 'charbonnier'"),
            ({"padding": "same"}, ValueError, "padding must be one of 'zeros', 'replicate', 'reflect'"),
            ({"operator": "prewitt"}, ValueError, "operator must be one of 'sobel', 'scharr', 'central'"),
            ({"backend": "cuda"}, ValueError, "backend must be one of 'auto', 'torch', 'triton'"),
            ({"stride": 0}, ValueError, "stride must be >= 1"),
            ({"eps": 0.0}, ValueError, "eps must be a positive number"),
            ({"charbonnier_eps": -1}, ValueError, "charbonnier_eps must be a positive number"),
        ],
    )
    def test_options(self, kwargs: dict, error: type, match: str) -> None:
        x = torch.rand(1, 3, 16, 16)
        with pytest.raises(error, match=match):
            gradient_variance_loss(x, x, **kwargs)
        with pytest.raises(error, match=match):
            GradientVarianceLoss(**kwargs)  # validated at construction, before any data


class TestBackend:
    def _fake_module(self, available: bool, reason: str | None):
        calls: list[dict] = []
        fake = types.ModuleType("fake_triton_gv")
        fake.is_available = lambda device: available  # type: ignore[attr-defined]
        fake.unsupported_reason = lambda **kw: reason  # type: ignore[attr-defined]

        def fake_loss(sr, hr, **kw):
            calls.append(kw)
            assert not hr.requires_grad
            return torch.tensor(123.0)

        fake.gradient_variance_loss_triton = fake_loss  # type: ignore[attr-defined]
        return fake, calls

    def test_torch_and_auto_agree_on_cpu(self) -> None:
        sr, hr = _pair((2, 3, 16, 16))
        torch.testing.assert_close(
            gradient_variance_loss(sr, hr, backend="auto"), gradient_variance_loss(sr, hr, backend="torch")
        )

    def test_auto_on_cpu_never_touches_triton(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fake, calls = self._fake_module(True, None)
        monkeypatch.setitem(sys.modules, "fake_triton_gv", fake)
        monkeypatch.setattr(loss_module, "_TRITON_MODULE", "fake_triton_gv")
        sr, hr = _pair((1, 3, 16, 16))
        assert gradient_variance_loss(sr, hr).item() != 123.0
        assert calls == []
        monkeypatch.setattr(loss_module, "_TRITON_MODULE", "gvcore.kernels._no_such_module")
        gradient_variance_loss(sr, hr, backend="auto")

    def test_triton_missing_module(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(loss_module, "_TRITON_MODULE", "gvcore.kernels._no_such_module")
        x = torch.rand(1, 3, 16, 16)
        with pytest.raises(ValueError, match="backend='triton' cannot run this call: cannot import"):
            gradient_variance_loss(x, x, backend="triton")

    def test_triton_unavailable_real_module(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The real kernel module on CPU without Triton's interpreter (with or without Triton installed)."""
        from gvcore.kernels import triton_gv

        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        x = torch.rand(1, 3, 16, 16)
        assert not triton_gv.is_available(x.device)
        with pytest.raises(ValueError, match=r"backend='triton' cannot run this call: .*not available"):
            gradient_variance_loss(x, x, backend="triton")

    def test_triton_dispatch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        x = torch.rand(2, 3, 16, 16)
        monkeypatch.setattr(loss_module, "_TRITON_MODULE", "fake_triton_gv")
        fake, calls = self._fake_module(False, None)
        monkeypatch.setitem(sys.modules, "fake_triton_gv", fake)
        with pytest.raises(ValueError, match="not available on device cpu"):
            gradient_variance_loss(x, x, backend="triton")
        fake, calls = self._fake_module(True, "operator='scharr' is not supported")
        monkeypatch.setitem(sys.modules, "fake_triton_gv", fake)
        with pytest.raises(ValueError, match="operator='scharr' is not supported"):
            gradient_variance_loss(x, x, backend="triton", operator="scharr")
        fake, calls = self._fake_module(True, None)
        monkeypatch.setitem(sys.modules, "fake_triton_gv", fake)
        with pytest.raises(ValueError, match="default eps"):
            gradient_variance_loss(x, x, backend="triton", eps=1e-2)
        out = gradient_variance_loss(x, x.clone().requires_grad_(), 4, reduction="sum", backend="triton")
        assert out.item() == 123.0
        assert calls == [
            {"patch_size": 4, "unbiased": True, "padding": "zeros", "distance": "mse", "reduction": "sum"}
        ]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "kwargs", [{}, {"gray": False, "distance": "l1"}, {"padding": "replicate", "stride": 4}]
)
def test_cuda_matches_cpu(kwargs: dict) -> None:
    sr, hr = _pair((2, 3, 33, 40))
    value, grad = _value_and_grad(gradient_variance_loss, sr, hr, backend="torch", **kwargs)
    value_cuda, grad_cuda = _value_and_grad(
        gradient_variance_loss, sr.cuda(), hr.cuda(), backend="torch", **kwargs
    )
    assert value_cuda.device.type == "cuda"
    torch.testing.assert_close(value_cuda.cpu(), value, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad_cuda.cpu(), grad, rtol=1e-3, atol=1e-6)
    auto = gradient_variance_loss(sr.cuda(), hr.cuda(), **kwargs)  # may run the Triton kernel
    torch.testing.assert_close(auto.cpu(), value, rtol=1e-4, atol=1e-6)
    with torch.autocast("cuda", dtype=torch.float16):
        half = gradient_variance_loss(sr.cuda().half(), hr.cuda().half(), **kwargs)
    assert torch.isfinite(half)


def _compile_check(backend: str) -> None:
    sr, hr = _pair((2, 3, 16, 20))
    compiled = torch.compile(gradient_variance_loss, backend=backend, fullgraph=True)
    loss = compiled(sr, hr)
    (grad,) = torch.autograd.grad(loss, sr)
    eager_loss, eager_grad = _value_and_grad(gradient_variance_loss, sr, hr)
    torch.testing.assert_close(loss.detach(), eager_loss)
    torch.testing.assert_close(grad, eager_grad)


def test_torch_compile_traces() -> None:
    _compile_check("aot_eager")  # dynamo + AOT autograd, no code generation: a few seconds


@pytest.mark.slow
def test_torch_compile_inductor() -> None:
    _compile_check("inductor")  # the default backend: C++ code generation, ~30 s on 2 busy cores
