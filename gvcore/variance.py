"""Patch-variance maps: the local variance of gradient maps that the GV loss compares (PAPER.md, steps 3-4)."""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from gvcore._validation import check_floating_image, check_positive_int
from gvcore.color import GRAY_WEIGHTS
from gvcore.gradients import gradient_maps, smoothing_weights

__all__ = ["fused_variance_maps", "patch_variance", "variance_maps"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


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


def fused_variance_maps(
    images: tuple[torch.Tensor, ...],
    p: int,
    s: tuple[float, float, float],
    weights: tuple[float, float, float] | None,
    divisor: int,
    keep_first: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance maps of ``gx``, ``gy`` (zero padding, non-overlapping tiles) of same-shaped images, all at once.

    The fast kernel behind :func:`variance_maps` and the GV loss: gray conversion written straight into a
    zero-padded buffer, separable gradients into one ``(K, 2, ...)`` buffer, tile sums by reducing the ``p`` rows
    of each tile first, then centring in place (two-pass variance) and squares into a dead buffer. Uses ``out=``
    and in-place ops, so it is not differentiable: the loss wraps it in an ``autograd.Function``.

    Args:
        images: ``K`` tensors ``(B, C, H, W)`` of one shape (dtypes may differ), ``H, W >= p``; not validated.
        p: tile side.
        s: smoothing vector of the operator (:func:`gvcore.gradients.smoothing_weights`).
        weights: gray weights for a 3-channel input, or ``None`` for per-channel gradients (also for ``C = 1``).
        divisor: ``p*p - 1`` (unbiased) or ``p*p``.
        keep_first: keep the first image's centred gradients (for a backward) instead of squaring them in place.

    Returns:
        ``(v, centred)``: ``v`` is ``(K, 2, B, C', H//p, W//p)`` (index 0 of dim 1 = x, 1 = y); with
        ``keep_first``, ``centred[0]`` is ``(2, B, C', Hc, Wc)``: the first image's gradients in the kept region
        minus their tile means (what the backward needs; everything else in it is scratch). The computation
        dtype is the images' promoted dtype, float32 for float16/bfloat16.
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
    if keep_first:
        numel = grads[0].numel()
        sq_first = (tmp.view(-1)[:numel] if tmp.numel() >= numel else tmp.new_empty(numel)).view(
            grads[0].shape
        )
        torch.mul(grads[0], grads[0], out=sq_first)
        v = _tile_sums(sq_first, p).unsqueeze(0)
        if k > 1:
            v = torch.cat([v, _tile_sums(grads[1:].square_(), p)])
        del sq_first
    else:
        v = _tile_sums(grads.square_(), p)
    del padded, tmp
    v = v.div_(divisor)
    return v.view(k, 2, b, cg, hp, wp), grads


def patch_variance(
    x: torch.Tensor,
    patch_size: int = 8,
    stride: int | None = None,
    unbiased: bool = True,
) -> torch.Tensor:
    """Variance of every ``patch_size x patch_size`` patch of every channel.

    With ``stride=None`` (the paper's setting) patches are non-overlapping tiles starting at the top-left corner;
    the last ``H % patch_size`` rows and ``W % patch_size`` columns, which do not fill a whole tile, are dropped.
    Tiles are read by a reshape to ``(B, C, H/p, p, W/p, p)`` and reduced with a two-pass (centred) variance in
    the input dtype, whose relative error is about ``eps * (1 + (eps * |tile mean| / tile std)^2)`` (float32:
    below 1e-6 while ``|mean| / std < 1e4``, far beyond what gradient maps of images reach).
    With another ``stride`` (overlapping when ``stride < patch_size``) the windows are those of
    ``F.avg_pool2d(kernel_size=patch_size, stride=stride)`` and the variance is ``E[x^2] - E[x]^2`` computed in
    float64 after subtracting each channel's mean, which keeps cancellation error near float64 rounding (relative
    error ~1e-12 for gradient maps of [0, 1] images), and then cast back.

    Args:
        x: ``(B, C, H, W)`` floating tensor with ``H, W >= patch_size``.
        patch_size: tile side ``p >= 2`` (paper: 8).
        stride: window step; ``None`` means ``patch_size`` (non-overlapping, paper).
        unbiased: divide by ``p*p - 1`` (paper, like ``torch.var``) instead of ``p*p``.

    Returns:
        Variance map with ``x``'s device. float16/bfloat16 inputs are accumulated **and returned** in float32 (so a
        loss built on it stays finite under autocast); other dtypes are kept.

    Shape:
        - x: ``(B, C, H, W)``
        - output: ``(B, C, (H - p) // stride + 1, (W - p) // stride + 1)``, i.e. ``(B, C, H // p, W // p)`` for
          the default stride.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> patch_variance(x, patch_size=2)  # each 2x2 tile holds {k, k+1, k+4, k+5}: variance 17/3
        tensor([[[[5.6667, 5.6667],
                  [5.6667, 5.6667]]]])
        >>> patch_variance(x, patch_size=2, stride=1).shape
        torch.Size([1, 1, 3, 3])
    """
    p = check_positive_int("patch_size", patch_size, minimum=2)
    step = p if stride is None else check_positive_int("stride", stride)
    check_floating_image("x", x, min_size=p)
    if x.dtype in _LOW_PRECISION:
        x = x.float()
    n = p * p
    divisor = n - 1 if unbiased else n
    if step == p:
        b, c, h, w = x.shape
        hp, wp = h // p, w // p
        tiles = x[..., : hp * p, : wp * p].reshape(b, c, hp, p, wp, p)
        centred = tiles - tiles.mean(dim=(3, 5), keepdim=True)
        return centred.square().sum(dim=(3, 5)) / divisor
    work = x.double() if x.device.type != "mps" else x  # MPS has no float64: float32 with centring only
    work = work - work.mean(dim=(2, 3), keepdim=True)
    mean = F.avg_pool2d(work, p, step)
    mean_sq = F.avg_pool2d(work.square(), p, step)
    var = (mean_sq - mean.square()).clamp_min(0.0) * (n / divisor)
    return var.to(x.dtype)


def variance_maps(
    x: torch.Tensor,
    patch_size: int = 8,
    stride: int | None = None,
    unbiased: bool = True,
    **gradient_kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch-variance maps of the horizontal and vertical gradient maps (PAPER.md, steps 1-4).

    Args:
        x: ``(B, C, H, W)`` floating image (RGB in [0, 1] for the paper's setting), ``H, W >= patch_size``.
        patch_size: tile side (paper: 8).
        stride: window step, ``None`` = non-overlapping tiles (paper); see :func:`patch_variance`.
        unbiased: divide by ``p*p - 1`` (paper).
        **gradient_kwargs: ``operator``, ``padding``, ``gray``, ``normalized`` of :func:`gvcore.gradient_maps`.

    Returns:
        ``(vx, vy)``: variance maps of ``gx`` and ``gy`` (float32 for float16/bfloat16 input). Without autograd
        and with zero padding and non-overlapping tiles they come from :func:`fused_variance_maps` (the same
        numbers, a few times faster); otherwise from :func:`gradient_maps` and :func:`patch_variance`.

    Shape:
        - x: ``(B, C, H, W)``
        - vx, vy: ``(B, 1, H // p, W // p)`` with ``gray=True`` and the default stride, else ``(B, C, ...)``.

    Example:
        >>> vx, vy = variance_maps(torch.rand(2, 3, 20, 17))
        >>> vx.shape, vy.shape
        (torch.Size([2, 1, 2, 2]), torch.Size([2, 1, 2, 2]))
    """
    p = check_positive_int("patch_size", patch_size, minimum=2)
    check_floating_image("x", x, min_size=p)
    options = {"operator": "sobel", "padding": "zeros", "gray": True, "normalized": False, **gradient_kwargs}
    fused = (
        options["padding"] == "zeros"
        and stride in (None, p)
        and not (x.requires_grad and torch.is_grad_enabled())
        and not torch.compiler.is_compiling()
        and set(options) == {"operator", "padding", "gray", "normalized"}
    )
    if not fused:
        gx, gy = gradient_maps(x, **gradient_kwargs)
        return patch_variance(gx, p, stride, unbiased), patch_variance(gy, p, stride, unbiased)
    gradient_maps(x[..., :2, :2], **gradient_kwargs)  # validates the options and channels on a 2x2 corner
    s = smoothing_weights(options["operator"], options["normalized"])
    weights = GRAY_WEIGHTS if options["gray"] and x.shape[1] == 3 else None
    v, _ = fused_variance_maps((x,), p, s, weights, p * p - 1 if unbiased else p * p, keep_first=False)
    out_dtype = torch.float32 if x.dtype in _LOW_PRECISION else v.dtype
    return v[0, 0].to(out_dtype), v[0, 1].to(out_dtype)
