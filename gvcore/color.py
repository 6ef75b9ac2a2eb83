"""Colour conversions: the paper's grayscale and the BT.601 luma used by the SR evaluation protocol."""

from __future__ import annotations

import torch

from gvcore._validation import check_floating_image

__all__ = ["GRAY_WEIGHTS", "rgb_to_y", "to_gray"]

#: Grayscale weights of the official GV code (PAPER.md step 1). They sum to 0.9999 -- kept as published.
GRAY_WEIGHTS: tuple[float, float, float] = (0.2989, 0.5870, 0.1140)

#: BT.601 luma coefficients for R, G, B in [0, 1] giving Y in [16, 235] (MATLAB ``rgb2ycbcr``, BasicSR).
_BT601_Y = (65.481, 128.553, 24.966)
#: Luma weights of the official GV evaluation (``utils.calc_ssim``): ``(65.738, 129.057, 25.064) / 256`` applied
#: to R, G, B on the 8-bit scale, no offset. Expressed here for R, G, B in [0, 1] (times 255 / 256).
OFFICIAL_LUMA = tuple(w * 255.0 / 256.0 for w in (65.738, 129.057, 25.064))


def to_gray(x: torch.Tensor, weights: tuple[float, float, float] = GRAY_WEIGHTS) -> torch.Tensor:
    """Weighted sum of the RGB channels.

    Args:
        x: ``(B, 3, H, W)`` floating RGB, any range. A ``(B, 1, H, W)`` input is returned unchanged.
        weights: R, G, B weights. Default: the official code's (0.2989, 0.5870, 0.1140).

    Returns:
        ``(B, 1, H, W)`` tensor with ``x``'s dtype and device.

    Example:
        >>> round(to_gray(torch.ones(1, 3, 2, 2)).flatten().tolist()[0], 6)
        0.9999
    """
    check_floating_image("x", x, channels=(1, 3))
    if len(weights) != 3:
        raise ValueError(f"weights must hold 3 numbers (R, G, B); got {weights!r}")
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(dim=1)
    return (weights[0] * r + weights[1] * g + weights[2] * b).unsqueeze(1)


def rgb_to_y(x: torch.Tensor, offset: bool = True) -> torch.Tensor:
    """BT.601 luma of an RGB image in [0, 1], on the 8-bit scale.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B)`` with R, G, B in [0, 1], so Y lies in [16, 235]
    (MATLAB ``rgb2ycbcr``; BasicSR ``test_y_channel``). With ``offset=False`` the +16 is omitted, which is
    the luma the official GV evaluation feeds to SSIM (PAPER.md, "official protocol").

    Args:
        x: ``(B, 3, H, W)`` floating RGB in [0, 1].
        offset: add the +16 of the BT.601 studio range.

    Returns:
        ``(B, 1, H, W)`` luma in [16, 235] (or [0, 219] without offset), same dtype and device as ``x``.

    Example:
        >>> rgb_to_y(torch.ones(1, 3, 1, 1)).item()  # doctest: +ELLIPSIS
        235.0...
    """
    check_floating_image("x", x, channels=3)
    r, g, b = x.unbind(dim=1)
    y = _BT601_Y[0] * r + _BT601_Y[1] * g + _BT601_Y[2] * b
    if offset:
        y = y + 16.0
    return y.unsqueeze(1)
