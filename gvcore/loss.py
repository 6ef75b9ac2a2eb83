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

import importlib
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from gvcore._validation import check_choice, check_floating_image, check_positive_int, check_same_shape
from gvcore.color import GRAY_WEIGHTS
from gvcore.gradients import OPERATORS, PADDINGS, Operator, Padding, smoothing_weights
from gvcore.variance import _expand_columns, _smooth_into, fused_variance_maps, variance_maps

__all__ = ["GradientVarianceLoss", "gradient_variance_loss"]

Reduction = Literal["mean", "sum", "none"]
Distance = Literal["mse", "l1", "charbonnier"]
Backend = Literal["auto", "torch", "triton"]

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
DISTANCES: tuple[str, ...] = ("mse", "l1", "charbonnier")
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton")

_TRITON_MODULE = "gvcore.kernels.triton_gv"
_DEFAULT_EPS = 1e-4
_DEFAULT_CHARBONNIER_EPS = 1e-3


# --------------------------------------------------------------------------------------------- fast path
class _FastVariance(torch.autograd.Function):
    """``(sr, hr) -> (v_sr, v_hr)``, each ``(2, B, C', H//p, W//p)``; hand-derived backward for ``sr`` only."""

    @staticmethod
    def forward(
        ctx: Any,
        sr: torch.Tensor,
        hr: torch.Tensor,
        p: int,
        s: tuple[float, float, float],
        weights: tuple[float, float, float] | None,
        divisor: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v, centred = fused_variance_maps((sr, hr), p, s, weights, divisor)
        ctx.save_for_backward(centred[0])
        ctx.p, ctx.s, ctx.weights, ctx.divisor = p, s, weights, divisor
        ctx.in_shape, ctx.in_dtype = tuple(sr.shape), sr.dtype
        ctx.mark_non_differentiable(v[1])
        return v[0], v[1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_v: torch.Tensor, _grad_hr: Any) -> tuple[torch.Tensor | None, ...]:
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
        # (Python-scalar multiplies, no host-to-device copy: the backward stays CUDA-graph capturable)
        if (h1, w1) == (h, w) and weights is None:
            grad_x = grad_g
        else:
            grad_x = grad_g.new_empty(b, c, h, w) if (h1, w1) == (h, w) else grad_g.new_zeros(b, c, h, w)
            if weights is None:
                grad_x[..., :h1, :w1] = grad_g
            else:
                for channel, weight in enumerate(weights):
                    torch.mul(grad_g, weight, out=grad_x[:, channel : channel + 1, :h1, :w1])
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
        v = fused_variance_maps((sr, hr), p, s, weights, divisor)[0]
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
            return module.gradient_variance_loss_triton(
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

    The constructor takes every argument of :func:`gradient_variance_loss` except ``sr`` and ``hr``, with the
    same meaning and defaults.

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
        """Validate every option now, so a bad setting fails before training starts."""
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
        """The GV loss of ``sr`` against ``hr`` with this module's options."""
        return gradient_variance_loss(sr, hr, **self.options)

    def extra_repr(self) -> str:
        """Every option for ``repr``; the tolerances and ``patch_sizes`` only when not at their defaults."""
        shown = dict(self.options)
        for key, default in (
            ("eps", _DEFAULT_EPS),
            ("charbonnier_eps", _DEFAULT_CHARBONNIER_EPS),
            ("patch_sizes", None),
        ):
            if shown[key] == default:
                del shown[key]
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())
