"""Fused Triton Gradient Variance loss: one pass over ``sr`` and ``hr`` forward, one gather pass backward.

The torch path (:func:`gvcore.gradient_variance_loss` with ``backend="torch"``) launches a chain of kernels and
materialises gray images, gradient maps and unfolded patches. Here everything up to the per-tile loss happens
in registers:

**Forward** (``_gv_forward_kernel``, one program per sample x tile row x block of ``TW`` tiles): load the
8 neighbours of every pixel of the tiles (the centre tap of both Sobel kernels is 0) for all channels of ``sr``
and ``hr``, convert to the paper's gray (0.2989 R + 0.5870 G + 0.1140 B) in float32, apply the raw Sobel
cross-correlation (``Kx = [[-1,0,1],[-2,0,2],[-1,0,1]]``, ``Ky = [[1,2,1],[0,0,0],[-1,-2,-1]]``, zero or
replicate padding of 1), compute each tile's mean and variance (two-pass, in registers), and the distance
``d(Vx_sr - Vx_hr) + d(Vy_sr - Vy_hr)`` per tile. Each tile's value is written to a small ``(B, H//p, W//p)``
float32 buffer and reduced with torch -- deterministic, no atomics. When a gradient is needed, the same program
also writes ``dGV_b/dGx`` and ``dGV_b/dGy`` for the kept pixels (``coef(tile) * (g - mean(tile))``) to a
float32 ``(B, 2, p*(H//p), p*(W//p))`` buffer saved for backward (for ``hr`` too when it requires grad).

**Backward** (``_gv_backward_kernel``, one program per sample x ``BH x BW`` pixel block): the adjoint of the
Sobel cross-correlation gathers the saved maps over the 3x3 neighbourhood (with zero padding a tap that fell
outside the image simply vanishes; with replicate padding it lands on the edge pixel, so border pixels gather
extra taps), scales by the per-sample upstream gradient and writes ``w_c * dGV/dgray`` to each channel.

Semantics are those of the torch path with ``operator="sobel"``, ``gray=True``, ``stride=patch_size`` (remainder
rows/columns dropped) and a single patch size: ``GV_b = mean_tiles d(dVx) + mean_tiles d(dVy)``, ``"mean"`` is
the mean of ``GV_b`` over the batch (the official value), ``"sum"`` their sum, ``"none"`` the ``(B,)`` vector.
All arithmetic is float32 whatever the input dtype (float32, float16, bfloat16); the loss is float32 and the
gradient has the input's dtype.

Triton is imported lazily. Kernels are built on first use, per mode: compiled (``triton.jit``) for CUDA
tensors, and run by Triton's interpreter for CPU tensors when ``TRITON_INTERPRET=1`` is set (how the tests run
without a GPU). The choice is made when the kernels are built, not when this module is imported, so setting the
variable after import works.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import torch

from gvcore._validation import check_choice, check_floating_image, check_positive_int, check_same_shape

if TYPE_CHECKING:  # the real binding happens in _kernels(), on first use
    import triton.language as tl

__all__ = ["MAX_PATCH_SIZE", "gradient_variance_loss_triton", "is_available", "unsupported_reason"]

#: Largest supported patch size: a program holds a whole tile (next power of two squared) in registers.
MAX_PATCH_SIZE = 32
_GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # PAPER.md step 1; same constants as gvcore.color.GRAY_WEIGHTS
_SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Forward block: 256 pixels, one per thread (8 warps). Measured on an H200 (bench/README.md): the forward is
# instruction-bound (48 masked loads per pixel), and 1 pixel/thread beat 2 or 4 by ~15% (2 needs ~66-100
# registers, 4 needs ~220 and halves occupancy; ptxas -v on the compiled kernels).
_TILE_BLOCK_ELEMENTS = 256  # pixels per forward program (``TW * P2 * P2``), at least one tile
_PIXELS_PER_THREAD = 1
_BACKWARD_BLOCK = (16, 64)  # (BH, BW) pixels per backward program
_BACKWARD_WARPS = 8
_INT32_LIMIT = 2**31 - 1


# ----------------------------------------------------------------------------------------------------------
# Kernels. Plain functions here; wrapped by triton.jit or the interpreter in _kernels(). They use no jit'd
# helpers, so one source serves both modes. ``tl`` is bound as a module global by _kernels().
# ----------------------------------------------------------------------------------------------------------
def _gv_forward_kernel(
    sr_ptr,
    hr_ptr,
    tile_loss_ptr,
    gmap_sr_ptr,
    gmap_hr_ptr,
    H,
    W,
    n_th,
    n_tw,
    n_tw_blocks,
    sr_sb,
    sr_sc,
    sr_sh,
    sr_sw,
    hr_sb,
    hr_sc,
    hr_sh,
    hr_sw,
    inv_den,
    grad_coef,
    P: tl.constexpr,
    P2: tl.constexpr,
    TW: tl.constexpr,
    C: tl.constexpr,
    W_R: tl.constexpr,
    W_G: tl.constexpr,
    W_B: tl.constexpr,
    REPLICATE: tl.constexpr,
    L1: tl.constexpr,
    STORE_SR: tl.constexpr,
    STORE_HR: tl.constexpr,
):
    pid = tl.program_id(0)
    twb = pid % n_tw_blocks
    rest = pid // n_tw_blocks
    ti = rest % n_th
    b = (rest // n_th).to(tl.int64)

    # One row per tile, its P2*P2 pixels along the row: the per-tile sums reduce along axis 1, inside a warp.
    k = tl.arange(0, P2 * P2)[None, :]
    r = k // P2
    c = k % P2
    tj = twb * TW + tl.arange(0, TW)[:, None]
    row = ti * P + r
    col = tj * P + c
    valid = (r < P) & (c < P) & (tj < n_tw)

    sr_base = sr_ptr + b * sr_sb
    hr_base = hr_ptr + b * hr_sb
    gx_s = tl.zeros([TW, P2 * P2], dtype=tl.float32)
    gy_s = tl.zeros([TW, P2 * P2], dtype=tl.float32)
    gx_h = tl.zeros([TW, P2 * P2], dtype=tl.float32)
    gy_h = tl.zeros([TW, P2 * P2], dtype=tl.float32)
    for tap in tl.static_range(9):
        da = tap // 3 - 1  # tap row offset
        db = tap % 3 - 1  # tap column offset
        wx = db * (2 - da * da)  # Kx[da+1][db+1]
        wy = -da * (2 - db * db)  # Ky[da+1][db+1]
        if tap != 4:  # the centre tap is 0 in both kernels
            rr = row + da
            cc = col + db
            if REPLICATE:
                rr = tl.minimum(tl.maximum(rr, 0), H - 1)
                cc = tl.minimum(tl.maximum(cc, 0), W - 1)
                m = valid
            else:
                m = valid & (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
            off_s = rr * sr_sh + cc * sr_sw
            off_h = rr * hr_sh + cc * hr_sw
            if C == 3:
                g_s = (
                    W_R * tl.load(sr_base + off_s, mask=m, other=0.0).to(tl.float32)
                    + W_G * tl.load(sr_base + sr_sc + off_s, mask=m, other=0.0).to(tl.float32)
                    + W_B * tl.load(sr_base + 2 * sr_sc + off_s, mask=m, other=0.0).to(tl.float32)
                )
                g_h = (
                    W_R * tl.load(hr_base + off_h, mask=m, other=0.0).to(tl.float32)
                    + W_G * tl.load(hr_base + hr_sc + off_h, mask=m, other=0.0).to(tl.float32)
                    + W_B * tl.load(hr_base + 2 * hr_sc + off_h, mask=m, other=0.0).to(tl.float32)
                )
            else:
                g_s = tl.load(sr_base + off_s, mask=m, other=0.0).to(tl.float32)
                g_h = tl.load(hr_base + off_h, mask=m, other=0.0).to(tl.float32)
            if wx != 0:
                gx_s += wx * g_s
                gx_h += wx * g_h
            if wy != 0:
                gy_s += wy * g_s
                gy_h += wy * g_h

    # Per-tile mean and variance, two-pass in registers (no cancellation from sum-of-squares).
    inv_n = 1.0 / (P * P)
    cx_s = tl.where(valid, gx_s - (tl.sum(gx_s, axis=1) * inv_n)[:, None], 0.0)
    cy_s = tl.where(valid, gy_s - (tl.sum(gy_s, axis=1) * inv_n)[:, None], 0.0)
    cx_h = tl.where(valid, gx_h - (tl.sum(gx_h, axis=1) * inv_n)[:, None], 0.0)
    cy_h = tl.where(valid, gy_h - (tl.sum(gy_h, axis=1) * inv_n)[:, None], 0.0)
    dvx = (tl.sum(cx_s * cx_s, axis=1) - tl.sum(cx_h * cx_h, axis=1)) * inv_den
    dvy = (tl.sum(cy_s * cy_s, axis=1) - tl.sum(cy_h * cy_h, axis=1)) * inv_den

    if L1:
        tile_loss = tl.abs(dvx) + tl.abs(dvy)
        ddx = tl.where(dvx > 0, 1.0, tl.where(dvx < 0, -1.0, 0.0))
        ddy = tl.where(dvy > 0, 1.0, tl.where(dvy < 0, -1.0, 0.0))
    else:
        tile_loss = dvx * dvx + dvy * dvy
        ddx = 2.0 * dvx
        ddy = 2.0 * dvy
    tj1 = twb * TW + tl.arange(0, TW)
    tl.store(tile_loss_ptr + (b * n_th + ti) * n_tw + tj1, tile_loss, mask=tj1 < n_tw)

    # dGV_b/dGx(q) = d'(dVx) * 2 (gx(q) - mean) / den / n_tiles, for q in a kept tile.
    kx = (ddx * grad_coef)[:, None]
    ky = (ddy * grad_coef)[:, None]
    wk = n_tw * P
    plane = n_th * P * wk
    goff = row * wk + col
    if STORE_SR:
        gbase = gmap_sr_ptr + b * 2 * plane
        tl.store(gbase + goff, kx * cx_s, mask=valid)
        tl.store(gbase + plane + goff, ky * cy_s, mask=valid)
    if STORE_HR:
        gbase = gmap_hr_ptr + b * 2 * plane
        tl.store(gbase + goff, -kx * cx_h, mask=valid)
        tl.store(gbase + plane + goff, -ky * cy_h, mask=valid)


def _gv_backward_kernel(
    gmap_ptr,
    scale_ptr,
    grad_ptr,
    H,
    W,
    hk,
    wk,
    n_hb,
    n_wb,
    g_sb,
    g_sc,
    g_sh,
    g_sw,
    C: tl.constexpr,
    W_R: tl.constexpr,
    W_G: tl.constexpr,
    W_B: tl.constexpr,
    REPLICATE: tl.constexpr,
    BH: tl.constexpr,
    BW: tl.constexpr,
):
    pid = tl.program_id(0)
    wb = pid % n_wb
    rest = pid // n_wb
    hb = rest % n_hb
    b = (rest // n_hb).to(tl.int64)

    pr = hb * BH + tl.arange(0, BH)[:, None]
    pc = wb * BW + tl.arange(0, BW)[None, :]
    inside = (pr < H) & (pc < W)
    plane = hk * wk
    gx_base = gmap_ptr + b * 2 * plane
    gy_base = gx_base + plane
    # Replicate padding: a tap that read row -1 (or H) read the edge row, so the edge pixel gathers it too.
    # For tap row offset da = -1 that is the gradient pixel in row 0 itself; for da = +1 the one in row H-1.
    top = pr == 0
    bottom = pr == H - 1
    left = pc == 0
    right = pc == W - 1
    edge_row_ok = pr < hk
    edge_col_ok = pc < wk

    acc = tl.zeros([BH, BW], dtype=tl.float32)
    for k in tl.static_range(9):
        da = k // 3 - 1
        db = k % 3 - 1
        wx = db * (2 - da * da)
        wy = -da * (2 - db * db)
        if k != 4:
            qr = pr - da
            qc = pc - db
            row_ok = (qr >= 0) & (qr < hk)
            col_ok = (qc >= 0) & (qc < wk)
            for corner in tl.static_range(4):
                use_edge_row = corner // 2
                use_edge_col = corner % 2
                if corner == 0 or REPLICATE:  # noqa: SIM102 (nested constexpr ifs, resolved at compile time)
                    if use_edge_row == 0 or da != 0:  # noqa: SIM102
                        if use_edge_col == 0 or db != 0:
                            if use_edge_row == 1:
                                src_r = pr
                                if da < 0:
                                    ok = inside & top & edge_row_ok
                                else:
                                    ok = inside & bottom & edge_row_ok
                            else:
                                src_r = qr
                                ok = inside & row_ok
                            if use_edge_col == 1:
                                src_c = pc
                                if db < 0:
                                    ok = ok & left & edge_col_ok
                                else:
                                    ok = ok & right & edge_col_ok
                            else:
                                src_c = qc
                                ok = ok & col_ok
                            off = src_r * wk + src_c
                            if wx != 0:
                                acc += wx * tl.load(gx_base + off, mask=ok, other=0.0)
                            if wy != 0:
                                acc += wy * tl.load(gy_base + off, mask=ok, other=0.0)

    acc = acc * tl.load(scale_ptr + b)
    out = grad_ptr + b * g_sb + pr * g_sh + pc * g_sw
    if C == 3:
        tl.store(out, (W_R * acc).to(grad_ptr.dtype.element_ty), mask=inside)
        tl.store(out + g_sc, (W_G * acc).to(grad_ptr.dtype.element_ty), mask=inside)
        tl.store(out + 2 * g_sc, (W_B * acc).to(grad_ptr.dtype.element_ty), mask=inside)
    else:
        tl.store(out, acc.to(grad_ptr.dtype.element_ty), mask=inside)


class _Kernels(NamedTuple):
    forward: Any
    backward: Any


@functools.cache
def _kernels(interpret: bool) -> _Kernels:
    """Build (once per mode) the forward and backward kernels: compiled for CUDA or interpreted for CPU."""
    import triton
    import triton.language

    globals()["tl"] = triton.language  # the kernels' ``tl``; see the module docstring
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        return _Kernels(InterpretedFunction(_gv_forward_kernel), InterpretedFunction(_gv_backward_kernel))
    return _Kernels(triton.jit(_gv_forward_kernel), triton.jit(_gv_backward_kernel))


# ----------------------------------------------------------------------------------------------------------
# Availability and supported options
# ----------------------------------------------------------------------------------------------------------
@functools.cache
def _triton_importable() -> bool:
    try:
        import triton
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install raising at import
        return False
    return True


def _interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _interpreter_usable() -> bool:
    """Whether Triton's own ``@jit`` helpers (``tl.zeros``, ``tl.sum``, ...) were built for the interpreter.

    Triton fixes that when ``triton.language`` is first imported: if ``TRITON_INTERPRET=1`` was not set then
    (e.g. ``torch.compile`` imported Triton earlier in the process), the interpreter cannot run any kernel
    that uses them, whatever the variable says now.
    """
    import triton.language
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(triton.language.zeros, InterpretedFunction)


def is_available(device: torch.device | str) -> bool:
    """Whether the fused kernel can run on ``device``.

    True on a CUDA device when Triton imports, and on CPU when Triton imports and ``TRITON_INTERPRET=1`` is
    set (Triton's interpreter; slow, meant for tests). False otherwise.

    Args:
        device: the device of the loss inputs.

    Returns:
        ``True`` if :func:`gradient_variance_loss_triton` accepts tensors on ``device``.

    Example:
        >>> is_available(torch.device("meta"))
        False
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and _triton_importable()
    if device.type == "cpu":
        return _interpreter_enabled() and _triton_importable() and _interpreter_usable()
    return False


def unsupported_reason(
    *,
    patch_size: int = 8,
    stride: int | None = None,
    unbiased: bool = True,
    padding: str = "zeros",
    distance: str = "mse",
    operator: str = "sobel",
    gray: bool = True,
    relative: bool = False,
    patch_sizes: Any = None,
    dtype: torch.dtype = torch.float32,
) -> str | None:
    """Why the fused kernel cannot compute a loss with these options, or ``None`` if it can.

    Supported: Sobel on the paper's gray, non-overlapping tiles (``stride`` ``None`` or equal to
    ``patch_size``) of one size ``2 <= patch_size <= 32``, biased or unbiased variance, ``zeros`` or
    ``replicate`` padding, ``mse`` or ``l1`` distance, float32 / float16 / bfloat16 inputs.

    Args:
        patch_size: tile side ``p``.
        stride: tile stride; ``None`` means ``patch_size``.
        unbiased: divide by ``p*p - 1`` (True) or ``p*p``; both supported.
        padding: Sobel padding mode.
        distance: criterion on the variance difference.
        operator: gradient operator.
        gray: compute on the gray image (True) or per channel (False).
        relative: the log-ratio variant.
        patch_sizes: multi-scale patch sizes (``None`` for a single scale).
        dtype: dtype of the inputs.

    Returns:
        ``None`` when supported, else a one-line human-readable reason naming the option.

    Example:
        >>> unsupported_reason(patch_size=8) is None
        True
        >>> unsupported_reason(operator="scharr")
        "operator='scharr' is not supported by the triton backend (supported: 'sobel')"
    """
    del unbiased  # both values supported
    if operator != "sobel":
        return f"operator={operator!r} is not supported by the triton backend (supported: 'sobel')"
    if not gray:
        return (
            "gray=False (per-channel variance) is not supported by the triton backend (supported: gray=True)"
        )
    if relative:
        return "relative=True (log-ratio variant) is not supported by the triton backend"
    if patch_sizes is not None:
        sizes = [patch_sizes] if isinstance(patch_sizes, int) else list(patch_sizes)
        if sizes != [patch_size]:
            return f"patch_sizes={patch_sizes!r} (multi-scale) is not supported by the triton backend"
    if (
        isinstance(patch_size, bool)
        or not isinstance(patch_size, int)
        or not 2 <= patch_size <= MAX_PATCH_SIZE
    ):
        return f"patch_size={patch_size!r} is not supported by the triton backend (supported: 2..{MAX_PATCH_SIZE})"
    if stride is not None and stride != patch_size:
        return f"stride={stride!r} (overlapping tiles) is not supported by the triton backend (supported: stride=patch_size)"
    if padding not in ("zeros", "replicate"):
        return f"padding={padding!r} is not supported by the triton backend (supported: 'zeros', 'replicate')"
    if distance not in ("mse", "l1"):
        return f"distance={distance!r} is not supported by the triton backend (supported: 'mse', 'l1')"
    if dtype not in _SUPPORTED_DTYPES:
        return f"dtype={dtype} is not supported by the triton backend (supported: float32, float16, bfloat16)"
    return None


# ----------------------------------------------------------------------------------------------------------
# Host side
# ----------------------------------------------------------------------------------------------------------
def _max_offset(x: torch.Tensor) -> int:
    """Largest element offset inside one sample of ``x`` (the kernels index within a sample in int32)."""
    return sum((size - 1) * stride for size, stride in zip(x.shape[1:], x.stride()[1:]))


def _gray_weights(channels: int) -> tuple[float, float, float]:
    return _GRAY_WEIGHTS if channels == 3 else (1.0, 0.0, 0.0)


def _launch_forward(
    sr: torch.Tensor,
    hr: torch.Tensor,
    patch_size: int,
    unbiased: bool,
    replicate: bool,
    l1: bool,
    store_sr: bool,
    store_hr: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    batch, channels, height, width = sr.shape
    n_th, n_tw = height // patch_size, width // patch_size
    p2 = _next_power_of_2(patch_size)
    tw = max(1, min(_next_power_of_2(n_tw), _TILE_BLOCK_ELEMENTS // (p2 * p2)))
    num_warps = max(1, min(16, p2 * p2 * tw // (32 * _PIXELS_PER_THREAD)))
    n_tw_blocks = -(-n_tw // tw)
    n = patch_size * patch_size
    den = n - 1 if unbiased else n
    tile_loss = torch.empty((batch, n_th, n_tw), device=sr.device, dtype=torch.float32)
    gshape = (batch, 2, n_th * patch_size, n_tw * patch_size)
    gmap_sr = torch.empty(gshape, device=sr.device, dtype=torch.float32) if store_sr else None
    gmap_hr = torch.empty(gshape, device=sr.device, dtype=torch.float32) if store_hr else None
    w_r, w_g, w_b = _gray_weights(channels)
    kernel = _kernels(sr.device.type == "cpu").forward
    grid = (batch * n_th * n_tw_blocks,)
    kernel[grid](
        sr,
        hr,
        tile_loss,
        gmap_sr if gmap_sr is not None else tile_loss,
        gmap_hr if gmap_hr is not None else tile_loss,
        height,
        width,
        n_th,
        n_tw,
        n_tw_blocks,
        *sr.stride(),
        *hr.stride(),
        1.0 / den,
        2.0 / den / (n_th * n_tw),
        P=patch_size,
        P2=p2,
        TW=tw,
        C=channels,
        W_R=w_r,
        W_G=w_g,
        W_B=w_b,
        REPLICATE=replicate,
        L1=l1,
        STORE_SR=store_sr,
        STORE_HR=store_hr,
        num_warps=num_warps,
    )
    return tile_loss, gmap_sr, gmap_hr


def _launch_backward(
    gmap: torch.Tensor, scale: torch.Tensor, shape: torch.Size, dtype: torch.dtype, replicate: bool
) -> torch.Tensor:
    batch, channels, height, width = shape
    grad = torch.empty(shape, device=gmap.device, dtype=dtype)
    bh, bw = _BACKWARD_BLOCK
    n_hb, n_wb = -(-height // bh), -(-width // bw)
    w_r, w_g, w_b = _gray_weights(channels)
    kernel = _kernels(gmap.device.type == "cpu").backward
    kernel[(batch * n_hb * n_wb,)](
        gmap,
        scale,
        grad,
        height,
        width,
        gmap.shape[2],
        gmap.shape[3],
        n_hb,
        n_wb,
        *grad.stride(),
        C=channels,
        W_R=w_r,
        W_G=w_g,
        W_B=w_b,
        REPLICATE=replicate,
        BH=bh,
        BW=bw,
        num_warps=_BACKWARD_WARPS,
    )
    return grad


def _next_power_of_2(n: int) -> int:
    """Smallest power of two ``>= n`` (``triton.next_power_of_2`` without importing Triton)."""
    return 1 << (n - 1).bit_length()


class _GradientVarianceTriton(torch.autograd.Function):
    """Per-sample GV loss ``(B,)`` with the fused forward and backward kernels."""

    @staticmethod
    def forward(
        ctx: Any,
        sr: torch.Tensor,
        hr: torch.Tensor,
        patch_size: int,
        unbiased: bool,
        replicate: bool,
        l1: bool,
    ) -> torch.Tensor:
        store_sr, store_hr = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with _device_guard(sr.device):
            tile_loss, gmap_sr, gmap_hr = _launch_forward(
                sr, hr, patch_size, unbiased, replicate, l1, store_sr, store_hr
            )
        ctx.replicate = replicate
        ctx.sr_meta = (sr.shape, sr.dtype)
        ctx.hr_meta = (hr.shape, hr.dtype)
        ctx.save_for_backward(gmap_sr, gmap_hr)
        return tile_loss.flatten(1).mean(dim=1)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        gmap_sr, gmap_hr = ctx.saved_tensors
        scale = grad_out.detach().to(torch.float32).contiguous()
        grads: list[torch.Tensor | None] = [None, None]
        with _device_guard(scale.device):
            for i, (gmap, (shape, dtype)) in enumerate(((gmap_sr, ctx.sr_meta), (gmap_hr, ctx.hr_meta))):
                if gmap is not None and ctx.needs_input_grad[i]:
                    grads[i] = _launch_backward(gmap, scale, shape, dtype, ctx.replicate)
        return grads[0], grads[1], None, None, None, None


class _device_guard:
    """``torch.cuda.device(d)`` for CUDA tensors (Triton launches on the current device), no-op otherwise."""

    def __init__(self, device: torch.device) -> None:
        self._inner = torch.cuda.device(device) if device.type == "cuda" else None

    def __enter__(self) -> None:
        if self._inner is not None:
            self._inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.__exit__(*exc)


def gradient_variance_loss_triton(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    patch_size: int = 8,
    unbiased: bool = True,
    padding: Literal["zeros", "replicate"] = "zeros",
    distance: Literal["mse", "l1"] = "mse",
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    """Gradient Variance loss (Abrahamyan et al., ICASSP 2022) with the fused Triton kernels.

    Same value and gradient as the torch path with ``operator="sobel"``, ``gray=True`` and non-overlapping
    tiles: gray ``0.2989 R + 0.5870 G + 0.1140 B`` (a 1-channel input is used as is), raw 3x3 Sobel
    cross-correlation with padding 1, variance of each ``p x p`` tile (rows/columns that do not fill a tile are
    dropped), ``GV_b = mean_tiles d(Vx_sr - Vx_hr) + mean_tiles d(Vy_sr - Vy_hr)``. Accumulation is float32.
    Differentiable w.r.t. ``sr`` (and ``hr`` if it requires grad) through a fused backward kernel.

    Args:
        sr: super-resolved images, float32/float16/bfloat16, on CUDA (or on CPU under ``TRITON_INTERPRET=1``).
            Any strides.
        hr: target images, same shape and device as ``sr`` (dtype may differ).
        patch_size: tile side ``p``, ``2 <= p <= 32``. Paper: 8.
        unbiased: tile variance divided by ``p*p - 1`` (paper) or by ``p*p``.
        padding: ``"zeros"`` (paper) or ``"replicate"`` padding for the Sobel filter.
        distance: ``"mse"`` (paper, squared difference) or ``"l1"`` (absolute difference) of the variances.
        reduction: ``"mean"`` over the batch of ``GV_b`` (the official value: mean over batch and tiles),
            ``"sum"`` over the batch of ``GV_b``, or ``"none"`` for the per-sample ``(B,)`` tensor.

    Returns:
        float32 scalar, or ``(B,)`` for ``reduction="none"``.

    Shape:
        - sr, hr: ``(B, C, H, W)`` with ``C`` in {1, 3} and ``H, W >= patch_size``.
        - output: ``()`` or ``(B,)``.

    Raises:
        ValueError: bad shapes, an unsupported option or dtype, or a device the kernel cannot run on.
        TypeError: non-tensor or non-floating inputs.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> if is_available(x.device):  # CUDA, or CPU with TRITON_INTERPRET=1
        ...     assert gradient_variance_loss_triton(x, x).item() == 0.0
    """
    check_floating_image("sr", sr, channels=(1, 3))
    check_floating_image("hr", hr, channels=(1, 3))
    check_same_shape("sr", sr, "hr", hr)
    check_positive_int("patch_size", patch_size, minimum=2)
    check_choice("padding", padding, ("zeros", "replicate"))
    check_choice("distance", distance, ("mse", "l1"))
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    if not isinstance(unbiased, bool):
        raise TypeError(f"unbiased must be a bool; got {type(unbiased).__name__} {unbiased!r}")
    for name, x in (("sr", sr), ("hr", hr)):
        reason = unsupported_reason(patch_size=patch_size, padding=padding, distance=distance, dtype=x.dtype)
        if reason is not None:
            raise ValueError(f"{name}: {reason}" if reason.startswith("dtype") else reason)
    if hr.device != sr.device:
        raise ValueError(f"sr and hr must be on the same device; got {sr.device} and {hr.device}")
    if not is_available(sr.device):
        hint = ""
        if sr.device.type == "cpu":
            hint = " (set TRITON_INTERPRET=1 to run it on CPU"
            if _interpreter_enabled() and _triton_importable():
                hint += ", before anything imports triton: it was imported without it, e.g. by torch.compile"
            hint += ")"
        raise ValueError(f"sr: the triton backend cannot run on device {sr.device}{hint}")
    height, width = sr.shape[-2:]
    if height < patch_size or width < patch_size:
        raise ValueError(
            f"sr must be at least patch_size x patch_size = {patch_size}x{patch_size}; got {height}x{width}"
        )
    for name, x in (("sr", sr), ("hr", hr)):
        if _max_offset(x) > _INT32_LIMIT:
            raise ValueError(f"{name}: one sample spans more than 2**31 elements; not supported by triton")
    per_sample = _GradientVarianceTriton.apply(
        sr, hr, patch_size, unbiased, padding == "replicate", distance == "l1"
    )
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
