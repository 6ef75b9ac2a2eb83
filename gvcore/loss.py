"""The Gradient Variance (GV) loss of Abrahamyan et al., ICASSP 2022 (arXiv 2202.00997), exact and fast.

With default arguments the value and its gradient equal the official formula (PAPER.md, steps 1-5)::

    g  = 0.2989 R + 0.5870 G + 0.1140 B
    Gx, Gy = conv2d(g, Kx / Ky, padding=1)                 # raw Sobel, zero padding
    Vx, Vy = unbiased variance of every non-overlapping 8x8 tile (remainder rows/columns dropped)
    GV = mean((Vx_sr - Vx_hr)^2) + mean((Vy_sr - Vy_hr)^2)

Two code paths give the same numbers:

- **fast path** (zero padding, non-overlapping tiles -- the defaults, any operator, gray or per-channel): a custom
  :class:`torch.autograd.Function` computes the variance maps with a handful of fused tensor ops into reused
  buffers and has a hand-derived backward: ``dV/dg = 2 (g - tile mean) / (p*p - 1)`` inside kept tiles (0 in the
  dropped remainder), then the adjoint of the gradient operator (correlation with the flipped kernel, which for
  these antisymmetric kernels is minus the kernel, with the same zero padding) and the adjoint of the gray
  conversion. Nothing is computed for ``hr``'s backward.
- **plain path** (``padding="replicate"/"reflect"``, a custom ``stride``, or any call traced by
  ``torch.compile``, which fuses these ops itself): :func:`gvcore.variance_maps` and ordinary autograd.

The distance, reduction, relative and multi-scale options act on the small variance maps with ordinary autograd,
so both paths share them. ``backend="triton"``/``"auto"`` can hand the whole loss to the fused kernel of
:mod:`gvcore.kernels.triton_gv` (CUDA) when it supports the options.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from gvcore._validation import check_choice, check_floating_image, check_positive_int, check_same_shape
from gvcore.color import GRAY_WEIGHTS
from gvcore.gradients import OPERATORS, PADDINGS, Operator, Padding, smoothing_weights
from gvcore.variance import variance_maps

__all__ = ["GradientVarianceLoss", "gradient_variance_loss"]

Reduction = Literal["mean", "sum", "none"]
Distance = Literal["mse", "l1", "charbonnier"]
Backend = Literal["auto", "torch", "triton"]

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
DISTANCES: tuple[str, ...] = ("mse", "l1", "charbonnier")
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_TRITON_MODULE = "gvcore.kernels.triton_gv"
_DEFAULT_EPS = 1e-4
_DEFAULT_CHARBONNIER_EPS = 1e-3


# --------------------------------------------------------------------------------------------- fast path
def _zero_border(t: torch.Tensor, rows: int, cols: int) -> None:
    """Zero everything of ``t[..., R, C]`` outside ``[1, 1 + rows) x [1, 1 + cols)``."""
    t[..., 0, :].zero_()
    t[..., 1 + rows :, :].zero_()
    t[..., :, 0].zero_()
    t[..., :, 1 + cols :].zero_()


def _smooth_into(src: torch.Tensor, s: tuple[float, float, float], dim: int, out: torch.Tensor) -> None:
    """``out = s[0] src[k] + s[1] src[k+1] + s[2] src[k+2]`` along ``dim`` (``out`` is 2 shorter there)."""
    n = src.shape[dim] - 2
    a, b, c = (src.narrow(dim, k, n) for k in range(3))
    if s[0] == 0.0 and s[2] == 0.0:
        torch.mul(b, s[1], out=out)
        return
    if s[0] == s[2] == 1.0:
        torch.add(a, c, out=out)
    else:
        torch.mul(a, s[0], out=out)
        out.add_(c, alpha=s[2])
    out.add_(b, alpha=s[1])


def _tile_sums(t: torch.Tensor, p: int) -> torch.Tensor:
    """Sums over non-overlapping ``p x p`` tiles of ``t[..., Hc, Wc]`` (``Hc``, ``Wc`` multiples of ``p``)."""
    *lead, hc, wc = t.shape
    rows = t.reshape(-1, hc // p, p, wc).sum(2)
    return rows.view(-1, hc // p, wc // p, p).sum(-1).view(*lead, hc // p, wc // p)


def _expand_columns(t: torch.Tensor, p: int) -> torch.Tensor:
    """Repeat every element of the last dim ``p`` times: ``(..., W') -> (..., W' * p)`` (tile value per column)."""
    return t.unsqueeze(-1).expand(*t.shape, p).reshape(*t.shape[:-1], t.shape[-1] * p)


def _fast_variance(
    images: tuple[torch.Tensor, ...],
    p: int,
    s: tuple[float, float, float],
    weights: tuple[float, float, float] | None,
    divisor: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance maps of ``gx`` and ``gy`` (zero padding, non-overlapping tiles) of same-shaped images at once.

    Returns ``(v, centred)``: ``v`` is ``(K, 2, B, C', H//p, W//p)`` (K images; index 0 of dim 1 = x, 1 = y) and
    ``centred[0]`` is ``(2, B, C', Hc, Wc)``, the first image's gradients in the kept region minus their tile
    means (what the backward needs; the other images' buffers are reused as scratch). The computation dtype is
    the images' promoted dtype, float32 for float16/bfloat16.
    """
    dtype = functools.reduce(torch.promote_types, (x.dtype for x in images))
    if dtype in _LOW_PRECISION:
        dtype = torch.float32
    k = len(images)
    b, c, h, w = images[0].shape
    hp, wp = h // p, w // p
    hc, wc = hp * p, wp * p
    # one extra input row/column beyond the kept region feeds the last kept gradients; beyond that is unused
    h1, w1 = min(h, hc + 1), min(w, wc + 1)
    cg = c if weights is None else 1
    padded = images[0].new_zeros(k, b, cg, hc + 2, wc + 2, dtype=dtype)  # the paper's zero padding
    for i, x in enumerate(images):
        inner = padded[i, :, :, 1 : 1 + h1, 1 : 1 + w1]
        src = x[:, :, :h1, :w1]
        if src.dtype != dtype:
            src = src.to(dtype)
        if weights is None:
            inner.copy_(src)
        else:
            torch.mul(src[:, 0:1], weights[0], out=inner)
            inner.add_(src[:, 1:2], alpha=weights[1])
            inner.add_(src[:, 2:3], alpha=weights[2])
    grads = padded.new_empty(k, 2, b, cg, hc, wc)  # each image's two directions side by side in memory
    tmp = padded.new_empty(k, b, cg, hc + 2, wc)
    torch.sub(padded[..., 2:], padded[..., :-2], out=tmp)  # right minus left
    _smooth_into(tmp, s, -2, grads[:, 0])
    _smooth_into(padded, s, -1, tmp)
    torch.sub(tmp[..., :-2, :], tmp[..., 2:, :], out=grads[:, 1])  # top minus bottom
    m = 2 * k * b * cg
    # tile sums: reduce the p rows of a tile first (long contiguous inner loops), then groups of p columns
    rows = grads.view(m, hp, p, wc)
    mean = rows.sum(2).view(m, hp, wp, p).sum(-1).div_(p * p)
    rows.sub_(_expand_columns(mean, p)[:, :, None, :])  # centred: accurate variance, reused by the backward
    # squares of the centred values: in place for the images after the first (not needed by any backward),
    # into the dead ``tmp`` buffer for the first one
    numel = grads[0].numel()
    sq_first = (tmp.view(-1)[:numel] if tmp.numel() >= numel else tmp.new_empty(numel)).view(grads[0].shape)
    torch.mul(grads[0], grads[0], out=sq_first)
    v = _tile_sums(sq_first, p).unsqueeze(0)
    if k > 1:
        v = torch.cat([v, _tile_sums(grads[1:].square_(), p)])
    del padded, tmp, sq_first
    v = v.div_(divisor)
    return v.view(k, 2, b, cg, hp, wp), grads


class _FastVariance(torch.autograd.Function):
    """``(sr, hr) -> (v_sr, v_hr)``, each ``(2, B, C', H//p, W//p)``; hand-derived backward for ``sr`` only."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        sr: torch.Tensor,
        hr: torch.Tensor,
        p: int,
        s: tuple[float, float, float],
        weights: tuple[float, float, float] | None,
        divisor: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v, centred = _fast_variance((sr, hr), p, s, weights, divisor)
        ctx.save_for_backward(centred[0])
        ctx.p, ctx.s, ctx.weights, ctx.divisor = p, s, weights, divisor
        ctx.in_shape, ctx.in_dtype = tuple(sr.shape), sr.dtype
        ctx.mark_non_differentiable(v[1])
        return v[0], v[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_v: torch.Tensor, _grad_hr: Any) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        (centred,) = ctx.saved_tensors
        p, s, weights = ctx.p, ctx.s, ctx.weights
        b, c, h, w = ctx.in_shape
        _, _, cg, hc, wc = centred.shape
        hp = hc // p
        h1, w1 = min(h, hc + 1), min(w, wc + 1)
        # dL/dg = dL/dV * 2 (g - mean) / divisor inside kept tiles, zero elsewhere, written into a padded map
        q = centred.new_zeros(2, b, cg, h1 + 2, w1 + 2)
        q_rows = q[..., 1 : 1 + hc, 1 : 1 + wc].unflatten(-2, (hp, p))
        coef = _expand_columns(grad_v.to(centred.dtype) * (2.0 / ctx.divisor), p)  # (2, B, C', H//p, Wc)
        torch.mul(centred.view(2, b, cg, hp, p, wc), coef.unsqueeze(-2), out=q_rows)
        # adjoint of the gradient operator = correlation with the flipped (negated) kernels, same zero padding
        grad_g = centred.new_empty(b, cg, h1, w1)
        tmp = centred.new_empty(b, cg, h1 + 2, w1)
        torch.sub(q[0, ..., :-2], q[0, ..., 2:], out=tmp)  # left minus right
        _smooth_into(tmp, s, -2, grad_g)
        _smooth_into(q[1], s, -1, tmp)
        grad_g.add_(tmp[..., 2:, :]).sub_(tmp[..., :-2, :])
        del q, tmp
        # adjoint of the gray conversion (or identity per channel), zero outside the rows/columns that were read
        scale = grad_g if weights is None else grad_g * grad_g.new_tensor(weights).view(1, 3, 1, 1)
        if (h1, w1) == (h, w):
            grad_x = scale
        else:
            grad_x = scale.new_zeros(b, c, h, w)
            grad_x[..., :h1, :w1] = scale
        return grad_x.to(ctx.in_dtype), None, None, None, None, None


# --------------------------------------------------------------------------------------------- options
def _patch_list(patch_size: int, patch_sizes: Sequence[int] | None) -> list[int]:
    if patch_sizes is None:
        return [check_positive_int("patch_size", patch_size, minimum=2)]
    if (
        isinstance(patch_sizes, (str, bytes))
        or not isinstance(patch_sizes, Sequence)
        or len(patch_sizes) == 0
    ):
        raise ValueError(
            f"patch_sizes must be a non-empty sequence of ints >= 2 or None; got {patch_sizes!r}"
        )
    return [check_positive_int("patch_sizes[]", q, minimum=2) for q in patch_sizes]


def _check_positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def _check_options(
    patch_size: int,
    reduction: str,
    distance: str,
    padding: str,
    operator: str,
    stride: int | None,
    eps: float,
    patch_sizes: Sequence[int] | None,
    charbonnier_eps: float,
    backend: str,
) -> list[int]:
    """Validate every hyper-parameter; return the list of patch sizes."""
    sizes = _patch_list(patch_size, patch_sizes)
    check_choice("reduction", reduction, REDUCTIONS)
    check_choice("distance", distance, DISTANCES)
    check_choice("padding", padding, PADDINGS)
    check_choice("operator", operator, OPERATORS)
    check_choice("backend", backend, BACKENDS)
    if stride is not None:
        check_positive_int("stride", stride)
    _check_positive_float("eps", eps)
    _check_positive_float("charbonnier_eps", charbonnier_eps)
    return sizes


# --------------------------------------------------------------------------------------------- triton
def _triton_reason(sr: torch.Tensor, options: dict[str, Any]) -> tuple[Any, str | None]:
    """Import the Triton module and ask whether it can run these options; ``(module, None)`` if it can."""
    try:
        module = importlib.import_module(_TRITON_MODULE)
    except ImportError as exc:
        return None, f"cannot import {_TRITON_MODULE} ({exc})"
    if not module.is_available(sr.device):
        return None, f"{_TRITON_MODULE} is not available on device {sr.device} (needs CUDA and triton)"
    if options["eps"] != _DEFAULT_EPS or options["charbonnier_eps"] != _DEFAULT_CHARBONNIER_EPS:
        return None, "the Triton kernel only supports the default eps and charbonnier_eps"
    reason = module.unsupported_reason(
        patch_size=options["patch_size"],
        stride=options["stride"],
        unbiased=options["unbiased"],
        padding=options["padding"],
        distance=options["distance"],
        operator=options["operator"],
        gray=options["gray"],
        relative=options["relative"],
        patch_sizes=options["patch_sizes"],
        dtype=sr.dtype,
    )
    return (module, None) if reason is None else (None, str(reason))


# --------------------------------------------------------------------------------------------- the loss
def _variance_pairs(
    sr: torch.Tensor,
    hr: torch.Tensor,
    p: int,
    stride: int | None,
    unbiased: bool,
    padding: str,
    operator: str,
    gray: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(v_sr, v_hr)``, each ``(2, B, C', H', W')`` (maps of gx, gy); only ``v_sr`` carries a gradient."""
    # under torch.compile the plain ops are traced instead: inductor fuses them and derives the backward itself
    # (the eager fast path writes into strided ``out=`` views, which dynamo cannot trace)
    if padding == "zeros" and stride in (None, p) and not torch.compiler.is_compiling():
        s = smoothing_weights(operator)  # type: ignore[arg-type]
        weights = GRAY_WEIGHTS if gray and sr.shape[1] == 3 else None
        divisor = p * p - 1 if unbiased else p * p
        if sr.requires_grad and torch.is_grad_enabled():
            v_sr, v_hr = _FastVariance.apply(sr, hr, p, s, weights, divisor)
            return v_sr, v_hr
        v = _fast_variance((sr, hr), p, s, weights, divisor)[0]
        return v[0], v[1]
    maps = dict(operator=operator, padding=padding, gray=gray)
    v_sr = torch.stack(variance_maps(sr, p, stride, unbiased, **maps))
    with torch.no_grad():
        v_hr = torch.stack(variance_maps(hr, p, stride, unbiased, **maps))
    return v_sr, v_hr


def gradient_variance_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    patch_size: int = 8,
    reduction: Reduction = "mean",
    distance: Distance = "mse",
    unbiased: bool = True,
    padding: Padding = "zeros",
    operator: Operator = "sobel",
    gray: bool = True,
    stride: int | None = None,
    relative: bool = False,
    eps: float = _DEFAULT_EPS,
    patch_sizes: Sequence[int] | None = None,
    charbonnier_eps: float = _DEFAULT_CHARBONNIER_EPS,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Gradient Variance loss between a super-resolved batch and its ground truth.

    Per sample ``b`` and direction ``d in {x, y}``, the variance maps ``V_d`` of the gradient maps of ``sr`` and
    ``hr`` (see :func:`gvcore.variance_maps`) are compared tile by tile, and the sample's loss is
    ``mean_tiles(dist(V_x,sr - V_x,hr)) + mean_tiles(dist(V_y,sr - V_y,hr))`` (the mean also runs over channels
    with ``gray=False``). With the defaults this is the paper's GV exactly (PAPER.md, step 5).

    Args:
        sr: ``(B, C, H, W)`` floating prediction (RGB in [0, 1] in the paper), ``H, W >= patch_size``.
        hr: ground truth of the same shape and device. It is a **target**: it is detached, no gradient flows to
            it even if it requires grad.
        patch_size: tile side ``p >= 2`` (paper: 8). Ignored when ``patch_sizes`` is given.
        reduction: over the per-sample losses ``(B,)``: ``"mean"`` (paper), ``"sum"`` or ``"none"`` (returns
            them; their mean equals ``"mean"``).
        distance: ``"mse"`` (paper: ``d^2``), ``"l1"`` (``|d|``) or ``"charbonnier"``
            (``sqrt(d^2 + charbonnier_eps^2) - charbonnier_eps``, 0 for identical images).
        unbiased: tile variance divides by ``p*p - 1`` (paper) instead of ``p*p``.
        padding: gradient border handling: ``"zeros"`` (paper), ``"replicate"`` or ``"reflect"``.
        operator: ``"sobel"`` (raw, paper), ``"scharr"`` or ``"central"``.
        gray: compare gradients of the paper's grayscale (needs 1 or 3 channels); ``False``: every channel.
        stride: tile step; ``None`` = ``patch_size`` (non-overlapping, paper); smaller values overlap.
        relative: compare ``d = log((V_sr + eps) / (V_hr + eps))`` instead of ``V_sr - V_hr`` (scale-free).
        eps: added to both variances by ``relative`` (default 1e-4, about 6x the Sobel-gradient variance of 8-bit
            quantisation noise, so flat regions do not dominate).
        patch_sizes: multi-scale variant: a sequence of tile sides; the loss is the **mean** of the per-scale
            losses (each with its own non-overlapping tiles, or with ``stride`` if given).
        charbonnier_eps: the Charbonnier ``epsilon``.
        backend: ``"torch"``; ``"triton"`` (fused kernel of :mod:`gvcore.kernels.triton_gv`; ``ValueError`` naming
            the reason when it cannot run these inputs/options); ``"auto"`` (Triton for supported options on CUDA,
            else torch; CPU always uses torch).

    Returns:
        Scalar (``"mean"``/``"sum"``) or ``(B,)`` (``"none"``) tensor, float32 for float16/bfloat16 inputs
        (variances are accumulated in float32, so the loss is finite under autocast), else ``sr``'s dtype.
        NaN/Inf in the inputs are not checked (that would need a device sync each step): they propagate, and
        the loss is NaN (like ``F.mse_loss``).

    Raises:
        TypeError: a non-tensor or an integer tensor (convert with ``x.float() / 255``).
        ValueError: wrong rank, channel count (with ``gray=True``), mismatched shapes or devices, an image smaller
            than one patch, ``patch_size < 2``, an unknown option string, a non-positive ``eps``.

    Shape:
        - sr, hr: ``(B, C, H, W)``
        - output: ``()`` or ``(B,)`` for ``reduction="none"``

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at 0x...>
        >>> hr = torch.rand(2, 3, 32, 32)
        >>> sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_()
        >>> loss = gradient_variance_loss(sr, hr)
        >>> loss.backward()
        >>> loss.item() > 0, sr.grad.shape
        (True, torch.Size([2, 3, 32, 32]))
        >>> gradient_variance_loss(hr, hr, reduction="none").tolist()
        [0.0, 0.0]
    """
    sizes = _check_options(
        patch_size, reduction, distance, padding, operator, stride, eps, patch_sizes, charbonnier_eps, backend
    )
    channels = (1, 3) if gray else None
    check_floating_image("sr", sr, channels=channels, min_size=max(sizes))
    check_floating_image("hr", hr, channels=channels, min_size=max(sizes))
    check_same_shape("sr", sr, "hr", hr)
    if sr.device != hr.device:
        raise ValueError(f"sr and hr must be on the same device; got {sr.device} and {hr.device}")
    hr = hr.detach()

    if backend != "torch" and (backend == "triton" or sr.is_cuda):
        options = dict(
            patch_size=patch_size, stride=stride, unbiased=unbiased, padding=padding, distance=distance,
            operator=operator, gray=gray, relative=relative, patch_sizes=patch_sizes, eps=eps,
            charbonnier_eps=charbonnier_eps,
        )  # fmt: skip
        module, reason = _triton_reason(sr, options)
        if module is not None:
            return module.gradient_variance_loss_triton(  # type: ignore[no-any-return]
                sr, hr, patch_size=patch_size, unbiased=unbiased, padding=padding, distance=distance,
                reduction=reduction,
            )  # fmt: skip
        if backend == "triton":
            raise ValueError(f"backend='triton' cannot run this call: {reason}")

    per_scale = []
    for p in sizes:
        v_sr, v_hr = _variance_pairs(sr, hr, p, stride, unbiased, padding, operator, gray)
        d = torch.log((v_sr + eps) / (v_hr + eps)) if relative else v_sr - v_hr
        if distance == "mse":
            e = d.square()
        elif distance == "l1":
            e = d.abs()
        else:
            e = torch.sqrt(d.square() + charbonnier_eps**2) - charbonnier_eps
        per_scale.append(e.mean(dim=(2, 3, 4)).sum(dim=0))  # (B,): sum over the two directions
    per_sample = per_scale[0] if len(per_scale) == 1 else torch.stack(per_scale).mean(dim=0)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


class GradientVarianceLoss(nn.Module):
    """Module form of :func:`gradient_variance_loss`; hyper-parameters are validated here, at construction.

    Args:
        See :func:`gradient_variance_loss` (every argument except ``sr`` and ``hr``).

    Shape:
        - sr, hr: ``(B, C, H, W)``
        - output: ``()`` or ``(B,)`` for ``reduction="none"``

    Example:
        >>> criterion = GradientVarianceLoss(patch_size=8)
        >>> criterion
        GradientVarianceLoss(patch_size=8, reduction='mean', distance='mse', unbiased=True, padding='zeros', operator='sobel', gray=True, stride=None, relative=False, backend='auto')
        >>> x = torch.rand(1, 3, 16, 16)
        >>> criterion(x, x).item()
        0.0
        >>> GradientVarianceLoss(distance="huber")
        Traceback (most recent call last):
        ...
        ValueError: distance must be one of 'mse', 'l1', 'charbonnier'; got 'huber'
    """

    def __init__(
        self,
        patch_size: int = 8,
        reduction: Reduction = "mean",
        distance: Distance = "mse",
        unbiased: bool = True,
        padding: Padding = "zeros",
        operator: Operator = "sobel",
        gray: bool = True,
        stride: int | None = None,
        relative: bool = False,
        eps: float = _DEFAULT_EPS,
        patch_sizes: Sequence[int] | None = None,
        charbonnier_eps: float = _DEFAULT_CHARBONNIER_EPS,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        _check_options(
            patch_size,
            reduction,
            distance,
            padding,
            operator,
            stride,
            eps,
            patch_sizes,
            charbonnier_eps,
            backend,
        )
        self.options: dict[str, Any] = dict(
            patch_size=patch_size, reduction=reduction, distance=distance, unbiased=unbiased, padding=padding,
            operator=operator, gray=gray, stride=stride, relative=relative, eps=eps,
            patch_sizes=None if patch_sizes is None else tuple(patch_sizes), charbonnier_eps=charbonnier_eps,
            backend=backend,
        )  # fmt: skip

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return gradient_variance_loss(sr, hr, **self.options)

    def extra_repr(self) -> str:
        shown = dict(self.options)
        for key, default in (
            ("eps", _DEFAULT_EPS),
            ("charbonnier_eps", _DEFAULT_CHARBONNIER_EPS),
            ("patch_sizes", None),
        ):
            if shown[key] == default:
                del shown[key]
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())
