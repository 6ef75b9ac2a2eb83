"""Patch-variance maps: the local variance of gradient maps that the GV loss compares (PAPER.md, steps 3-4)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gvcore._validation import check_floating_image, check_positive_int
from gvcore.gradients import gradient_maps

__all__ = ["patch_variance", "variance_maps"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


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
        ``(vx, vy)``: variance maps of ``gx`` and ``gy`` (float32 for float16/bfloat16 input).

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
    gx, gy = gradient_maps(x, **gradient_kwargs)
    return patch_variance(gx, p, stride, unbiased), patch_variance(gy, p, stride, unbiased)
