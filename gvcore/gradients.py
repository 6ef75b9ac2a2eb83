"""Image gradient maps: raw Sobel (the paper's operator), Scharr and central differences.

All three operators are separable 3x3 kernels: a smoothing vector ``s`` across the derivative direction times the
difference ``[-1, 0, 1]`` along it. They are applied by **cross-correlation** (like ``F.conv2d``), so with the
paper's raw Sobel kernels (PAPER.md, step 2)::

    Kx = [[-1, 0, 1],        Ky = [[ 1,  2,  1],
          [-2, 0, 2],              [ 0,  0,  0],
          [-1, 0, 1]]              [-1, -2, -1]]

``gx`` is "right minus left" and ``gy`` is "top minus bottom". :func:`gradient_maps` evaluates them as two
shifted differences and two shifted weighted sums of a padded image, which is cheaper than ``F.conv2d`` on a CPU
and gives the same values to float rounding.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from gvcore._validation import check_choice, check_floating_image
from gvcore.color import to_gray

__all__ = ["OPERATORS", "PADDINGS", "gradient_kernels", "gradient_maps", "smoothing_weights"]

Operator = Literal["sobel", "scharr", "central"]
Padding = Literal["zeros", "replicate", "reflect"]

#: Valid ``operator`` values.
OPERATORS: tuple[str, ...] = ("sobel", "scharr", "central")
#: Valid ``padding`` values (``"zeros"`` is the paper's: ``F.conv2d(..., padding=1)``).
PADDINGS: tuple[str, ...] = ("zeros", "replicate", "reflect")

# operator -> (smoothing vector across the derivative direction, sum of |kernel| used by normalized=True)
_SEPARABLE: dict[str, tuple[tuple[float, float, float], float]] = {
    "sobel": ((1.0, 2.0, 1.0), 8.0),
    "scharr": ((3.0, 10.0, 3.0), 32.0),
    "central": ((0.0, 1.0, 0.0), 2.0),
}


def smoothing_weights(operator: Operator = "sobel", normalized: bool = False) -> tuple[float, float, float]:
    """The smoothing vector ``s`` of a separable operator, so that ``Kx = outer(s, [-1, 0, 1])``.

    Args:
        operator: ``"sobel"`` (``s = (1, 2, 1)``), ``"scharr"`` (``(3, 10, 3)``) or ``"central"`` (``(0, 1, 0)``).
        normalized: divide by the sum of the kernel's absolute values (8, 32, 2), as kornia does.

    Returns:
        Three Python floats.

    Example:
        >>> smoothing_weights("sobel")
        (1.0, 2.0, 1.0)
        >>> smoothing_weights("sobel", normalized=True)
        (0.125, 0.25, 0.125)
    """
    check_choice("operator", operator, OPERATORS)
    s, total = _SEPARABLE[operator]
    if normalized:
        return (s[0] / total, s[1] / total, s[2] / total)
    return s


def gradient_kernels(
    operator: Operator = "sobel",
    normalized: bool = False,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3x3 cross-correlation kernels ``(Kx, Ky)`` of an operator.

    Args:
        operator: ``"sobel"`` (default, raw as in the paper), ``"scharr"`` or ``"central"``.
        normalized: divide by the sum of absolute values (Sobel: 8).
        device: device of the returned tensors (pass the input's).
        dtype: dtype of the returned tensors (pass the input's).

    Returns:
        ``(Kx, Ky)``, each a ``(3, 3)`` tensor; ``Ky`` is ``Kx`` transposed and flipped upside down, so ``gy`` is
        "top minus bottom" (the official code's sign).

    Example:
        >>> kx, ky = gradient_kernels("sobel")
        >>> kx.tolist()
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
        >>> ky.tolist()
        [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]
    """
    s = torch.tensor(smoothing_weights(operator, normalized), device=device, dtype=dtype)
    d = torch.tensor([-1.0, 0.0, 1.0], device=device, dtype=dtype)
    kx = torch.outer(s, d)
    ky = torch.outer(d.flip(0), s)
    return kx, ky


def sobel_like(padded: torch.Tensor, s: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable cross-correlation of an already padded map (internal building block, also used by the loss).

    Args:
        padded: ``(..., H + 2, W + 2)`` tensor.
        s: smoothing vector of the operator (see :func:`smoothing_weights`).

    Returns:
        ``(gx, gy)``, each ``(..., H, W)``.
    """
    dx = padded[..., 2:] - padded[..., :-2]  # (..., H + 2, W): right minus left
    gx = _smooth(dx, s, dim=-2)
    sm = _smooth(padded, s, dim=-1)  # (..., H + 2, W)
    gy = sm[..., :-2, :] - sm[..., 2:, :]  # top minus bottom
    return gx, gy


def _smooth(t: torch.Tensor, s: tuple[float, float, float], dim: int) -> torch.Tensor:
    """``s[0] t[k] + s[1] t[k+1] + s[2] t[k+2]`` along ``dim`` (length shrinks by 2)."""
    n = t.shape[dim] - 2
    a, b, c = (t.narrow(dim, k, n) for k in range(3))
    if s[0] == 0.0 and s[2] == 0.0:
        return b * s[1] if s[1] != 1.0 else b.clone()
    out = a + c if s[0] == s[2] == 1.0 else a * s[0] + c * s[2]
    return out.add_(b, alpha=s[1])


def gradient_maps(
    x: torch.Tensor,
    operator: Operator = "sobel",
    padding: Padding = "zeros",
    gray: bool = True,
    normalized: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical gradient maps of an image batch.

    Args:
        x: ``(B, C, H, W)`` floating image, any range. With ``gray=True`` ``C`` must be 3 (RGB, converted with the
            paper's weights by :func:`gvcore.to_gray`) or 1 (used as is).
        operator: ``"sobel"`` (raw, the paper's), ``"scharr"`` or ``"central"`` (``[-1, 0, 1]``).
        padding: border handling, 1 pixel on each side: ``"zeros"`` (the paper's, like ``F.conv2d(padding=1)``),
            ``"replicate"`` or ``"reflect"`` (needs ``H, W >= 2``).
        gray: convert RGB to gray first (paper); ``False`` computes gradients of every channel separately.
        normalized: divide the kernels by the sum of their absolute values (Sobel: 1/8). Off in the paper.

    Returns:
        ``(gx, gy)`` with ``x``'s dtype and device: ``gx`` right minus left, ``gy`` top minus bottom
        (cross-correlation with ``Kx``, ``Ky`` of :func:`gradient_kernels`).

    Shape:
        - x: ``(B, C, H, W)``
        - gx, gy: ``(B, 1, H, W)`` with ``gray=True``, else ``(B, C, H, W)``

    Example:
        >>> x = torch.zeros(1, 1, 3, 4)
        >>> x[..., 2:] = 1.0  # a vertical edge
        >>> gx, gy = gradient_maps(x)
        >>> gx[0, 0].tolist()
        [[0.0, 3.0, 3.0, -3.0], [0.0, 4.0, 4.0, -4.0], [0.0, 3.0, 3.0, -3.0]]
        >>> gy.shape
        torch.Size([1, 1, 3, 4])
    """
    check_choice("operator", operator, OPERATORS)
    check_choice("padding", padding, PADDINGS)
    check_floating_image("x", x, channels=(1, 3) if gray else None, min_size=2 if padding == "reflect" else 1)
    s = smoothing_weights(operator, normalized)
    g = to_gray(x) if gray else x
    mode = "constant" if padding == "zeros" else padding
    return sobel_like(F.pad(g, (1, 1, 1, 1), mode=mode), s)
