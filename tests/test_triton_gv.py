"""The fused Triton GV loss (gvcore.kernels.triton_gv) against the independent reference and the torch path.

Without a GPU the kernels run in Triton's interpreter: ``TRITON_INTERPRET=1`` is set per test with
``monkeypatch`` (the module decides interpreted vs compiled when it builds the kernels, from the tensors'
device). Triton's own helpers are fixed for the interpreter only if the variable is set when Triton is first
imported, so ``tests/conftest.py`` sets it at session start on machines without CUDA. Shapes are tiny because the interpreter is slow.
CUDA tests (``-m cuda``) compile the kernels and compare with the torch path on the GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

from tests.official_gv_reference import reference_loss

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

from gvcore.kernels import triton_gv  # noqa: E402  (imports no triton itself)

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    if not triton_gv.is_available("cpu"):  # see tests/conftest.py
        pytest.skip("Triton was imported in this process before TRITON_INTERPRET=1 was set")


def _rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return ((actual.double() - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


def _check(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float32,
    tol: float = 2e-5,
    grad_tol: float = 2e-5,
    **options: object,
) -> None:
    """Value ("none") and gradient of the kernel on ``sr.to(dtype)`` vs the float64 reference of the same input."""
    sr_k = sr.detach().to(dtype).requires_grad_()
    hr_k = hr.detach().to(dtype)
    out = triton_gv.gradient_variance_loss_triton(sr_k, hr_k, reduction="none", **options)  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(out.sum(), sr_k)

    sr_ref = sr_k.detach().double().requires_grad_()
    maps = {k: options[k] for k in ("unbiased", "padding") if k in options}
    ref = reference_loss(
        sr_ref,
        hr_k.detach().double(),
        patch_size=options.get("patch_size", 8),  # type: ignore[arg-type]
        reduction="none",
        distance=options.get("distance", "mse"),  # type: ignore[arg-type]
        **maps,
    )
    (grad_ref,) = torch.autograd.grad(ref.sum(), sr_ref)
    assert out.shape == (sr.shape[0],)
    assert out.dtype == torch.float32
    assert grad.shape == sr.shape
    assert grad.dtype == dtype
    assert _rel_err(out, ref) < tol
    assert _rel_err(grad, grad_ref) < grad_tol


# ------------------------------------------------------------------------------------------ interpreter
CASES = [
    dict(patch_size=4, padding="zeros", distance="mse", unbiased=True),
    dict(patch_size=4, padding="replicate", distance="l1", unbiased=False),
    dict(patch_size=4, padding="replicate", distance="mse", unbiased=True),
    dict(patch_size=8, padding="zeros", distance="l1", unbiased=True),
    dict(patch_size=8, padding="replicate", distance="mse", unbiased=False),
]


@pytest.mark.usefixtures("interpret")
@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_matches_reference_ragged_batch(options: dict[str, object]) -> None:
    g = torch.Generator().manual_seed(0)
    sr, hr = torch.rand(2, 3, 19, 21, generator=g), torch.rand(2, 3, 19, 21, generator=g)
    _check(sr, hr, **options)


@pytest.mark.usefixtures("interpret")
@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_divisible_size_uses_every_border(padding: str) -> None:
    # H, W multiples of p: the last kept gradient row/column reads the padding (replicate folds it back)
    g = torch.Generator().manual_seed(1)
    _check(
        torch.rand(2, 3, 12, 16, generator=g),
        torch.rand(2, 3, 12, 16, generator=g),
        patch_size=4,
        padding=padding,
    )


@pytest.mark.usefixtures("interpret")
def test_patch_size_not_power_of_two_and_gray_input() -> None:
    g = torch.Generator().manual_seed(2)
    _check(torch.rand(1, 3, 22, 21, generator=g), torch.rand(1, 3, 22, 21, generator=g), patch_size=20)
    _check(
        torch.rand(2, 1, 9, 10, generator=g),
        torch.rand(2, 1, 9, 10, generator=g),
        patch_size=3,
        padding="replicate",
    )


@pytest.mark.usefixtures("interpret")
def test_non_contiguous_inputs() -> None:
    g = torch.Generator().manual_seed(3)
    sr = torch.rand(2, 21, 19, 3, generator=g).permute(0, 3, 2, 1)  # channels-last-like strides
    hr = torch.rand(3, 2, 38, 21, generator=g).transpose(0, 1)[:, :, ::2]
    assert not sr.is_contiguous()
    assert not hr.is_contiguous()
    _check(sr, hr, patch_size=4, padding="replicate")


@pytest.mark.usefixtures("interpret")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_accumulate_in_float32(dtype: torch.dtype) -> None:
    # the value is exact float32 arithmetic on the rounded inputs; only the gradient is rounded to ``dtype``
    g = torch.Generator().manual_seed(4)
    sr, hr = torch.rand(2, 3, 19, 21, generator=g), torch.rand(2, 3, 19, 21, generator=g)
    _check(sr, hr, dtype=dtype, grad_tol=1e-2 if dtype == torch.bfloat16 else 1e-3, patch_size=4)


@pytest.mark.usefixtures("interpret")
def test_reductions_and_hr_gradient() -> None:
    g = torch.Generator().manual_seed(5)
    sr = torch.rand(3, 3, 12, 13, generator=g, requires_grad=True)
    hr = torch.rand(3, 3, 12, 13, generator=g, requires_grad=True)
    loss = triton_gv.gradient_variance_loss_triton
    none = loss(sr, hr, patch_size=4, reduction="none")
    torch.testing.assert_close(loss(sr, hr, patch_size=4), none.mean())
    torch.testing.assert_close(loss(sr, hr, patch_size=4, reduction="sum"), none.sum())
    # unlike gvcore.gradient_variance_loss (which detaches hr), the kernel also differentiates w.r.t. hr
    grad_sr, grad_hr = torch.autograd.grad(none.sum(), (sr, hr))
    sr_ref, hr_ref = sr.detach().double().requires_grad_(), hr.detach().double().requires_grad_()
    ref = reference_loss(sr_ref, hr_ref, patch_size=4, reduction="none")
    assert _rel_err(none, ref) < 2e-5
    # reference_loss detaches hr, so differentiate the swapped call for hr (the loss is symmetric)
    (ref_grad_sr,) = torch.autograd.grad(ref.sum(), sr_ref)
    ref_swapped = reference_loss(hr_ref, sr_ref.detach(), patch_size=4, reduction="none")
    (ref_grad_hr,) = torch.autograd.grad(ref_swapped.sum(), hr_ref)
    assert _rel_err(grad_sr, ref_grad_sr) < 2e-5
    assert _rel_err(grad_hr, ref_grad_hr) < 2e-5
    with torch.no_grad():
        torch.testing.assert_close(loss(sr, hr, patch_size=4, reduction="none"), none.detach())
    assert loss(hr, hr, patch_size=4).item() == 0.0


@pytest.mark.usefixtures("interpret")
def test_backend_triton_equals_backend_torch_on_cpu() -> None:
    import gvcore

    g = torch.Generator().manual_seed(6)
    hr = torch.rand(2, 3, 19, 21, generator=g)
    for kwargs in (dict(), dict(patch_size=4, padding="replicate", distance="l1", reduction="none")):
        grads = []
        values = []
        for backend in ("triton", "torch"):
            sr = (
                hr + 0.2 * torch.rand(hr.shape, generator=torch.Generator().manual_seed(7))
            ).requires_grad_()
            value = gvcore.gradient_variance_loss(sr, hr, backend=backend, **kwargs)  # type: ignore[arg-type]
            value.sum().backward()
            values.append(value.detach())
            grads.append(sr.grad)
        torch.testing.assert_close(values[0], values[1], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------------------------------ no kernel runs
def test_unsupported_options_have_reasons() -> None:
    reason = triton_gv.unsupported_reason
    assert reason(patch_size=8) is None
    assert (
        reason(patch_size=20, padding="replicate", distance="l1", unbiased=False, dtype=torch.bfloat16)
        is None
    )
    assert "operator='scharr'" in str(reason(operator="scharr"))
    for kwargs, word in [
        (dict(stride=4), "stride"),
        (dict(padding="reflect"), "padding"),
        (dict(distance="charbonnier"), "distance"),
        (dict(gray=False), "gray"),
        (dict(relative=True), "relative"),
        (dict(patch_sizes=(4, 8)), "patch_sizes"),
        (dict(patch_size=33), "patch_size"),
        (dict(dtype=torch.float64), "float64"),
    ]:
        assert word in str(reason(**kwargs)), kwargs  # type: ignore[arg-type]
    assert reason(patch_size=8, patch_sizes=[8], stride=8) is None


def test_cpu_without_interpreter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = torch.rand(1, 3, 16, 16)
    assert not triton_gv.is_available(x.device)
    assert not triton_gv.is_available("meta")
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        triton_gv.gradient_variance_loss_triton(x, x)


@pytest.mark.usefixtures("interpret")
def test_bad_inputs_raise_value_error_naming_the_argument() -> None:
    loss = triton_gv.gradient_variance_loss_triton
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        loss(x, x[..., :15])
    with pytest.raises(ValueError, match="channels"):
        loss(torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="padding"):
        loss(x, x, padding="reflect")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        loss(x, x, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patch_size"):
        loss(x, x, patch_size=64)
    with pytest.raises(ValueError, match="at least"):
        loss(x, x, patch_size=17)
    with pytest.raises(ValueError, match="float64"):
        loss(x.double(), x.double())
    with pytest.raises(TypeError, match="floating"):
        loss((x * 255).to(torch.uint8), x)


def test_importing_the_module_does_not_import_triton() -> None:
    code = "import sys, gvcore.kernels.triton_gv; print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------ real GPU
@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("options", [*CASES, dict(patch_size=16), dict(patch_size=20, padding="replicate")])
def test_cuda_matches_reference(dtype: torch.dtype, options: dict[str, object]) -> None:
    g = torch.Generator().manual_seed(8)
    sr, hr = torch.rand(3, 3, 67, 45, generator=g), torch.rand(3, 3, 67, 45, generator=g)
    grad_tol = {torch.float32: 2e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}[dtype]
    cuda_sr, cuda_hr = sr.cuda(), hr.cuda()
    sr_k = cuda_sr.to(dtype).requires_grad_()
    out = triton_gv.gradient_variance_loss_triton(sr_k, cuda_hr.to(dtype), reduction="none", **options)  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(out.sum(), sr_k)
    sr_ref = sr_k.detach().cpu().double().requires_grad_()
    maps = {k: options[k] for k in ("unbiased", "padding") if k in options}
    ref = reference_loss(
        sr_ref,
        cuda_hr.to(dtype).cpu().double(),
        patch_size=options.get("patch_size", 8),  # type: ignore[arg-type]
        reduction="none",
        distance=options.get("distance", "mse"),  # type: ignore[arg-type]
        **maps,
    )
    (grad_ref,) = torch.autograd.grad(ref.sum(), sr_ref)
    assert _rel_err(out.cpu(), ref) < 2e-5
    assert _rel_err(grad.cpu(), grad_ref) < grad_tol


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_auto_backend_picks_triton_and_equals_torch() -> None:
    import gvcore

    g = torch.Generator().manual_seed(9)
    hr = torch.rand(4, 3, 64, 72, generator=g).cuda()
    sr_cpu = torch.rand(4, 3, 64, 72, generator=g)
    results = []
    for backend in ("auto", "torch"):
        sr = sr_cpu.cuda().requires_grad_()
        value = gvcore.gradient_variance_loss(sr, hr, backend=backend)
        value.backward()
        results.append((value.detach(), sr.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-8)


def test_interpreter_after_triton_was_imported_is_refused_clearly() -> None:
    """Triton imported before TRITON_INTERPRET=1 (as torch.compile does): a clear error, not Triton's."""
    code = (
        "import os, torch, triton.language\n"
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "from gvcore.kernels import triton_gv\n"
        "assert not triton_gv.is_available('cpu')\n"
        "x = torch.rand(1, 3, 8, 8)\n"
        "try:\n"
        "    triton_gv.gradient_variance_loss_triton(x, x)\n"
        "except ValueError as err:\n"
        "    print(err)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "before anything imports triton" in out.stdout
