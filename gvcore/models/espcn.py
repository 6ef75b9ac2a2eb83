"""ESPCN (Shi et al., CVPR 2016): sub-pixel convolution on the LR grid, here on RGB.

Layers: 5x5 conv -> 64, tanh; 3x3 conv -> 32, tanh; 3x3 conv -> ``C * scale**2``; pixel shuffle. State-dict
keys follow the widely used ``yjn870/ESPCN-pytorch`` layout (``first_part.{0,2}``, ``last_part.0``), so its
checkpoints load with ``channels=1``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from gvcore._validation import check_floating_image, check_positive_int
from gvcore.models._recognise import Recognised, conv_channels
from gvcore.models._support import ArchSupport

__all__ = ["ESPCN", "recognise"]


class ESPCN(nn.Module):
    """Efficient Sub-Pixel CNN.

    Args:
        scale: upscaling factor.
        channels: image channels (3 for RGB; the paper used 1, the Y channel).
        num_features: width of the first conv (paper: 64); the second has half of it (paper: 32).

    Shape:
        - Input: ``(B, channels, h, w)``, in [0, 1].
        - Output: ``(B, channels, scale*h, scale*w)``, not clamped.

    Example:
        >>> ESPCN(scale=3)(torch.rand(2, 3, 5, 7)).shape
        torch.Size([2, 3, 15, 21])
    """

    arch: str = "espcn"

    def __init__(self, scale: int, channels: int = 3, num_features: int = 64) -> None:
        """Build the feature layers and the sub-pixel (pixel-shuffle) output layer."""
        super().__init__()
        self.scale = check_positive_int("scale", scale)
        self.channels = check_positive_int("channels", channels)
        check_positive_int("num_features", num_features, minimum=2)
        half = num_features // 2
        self.first_part = nn.Sequential(
            nn.Conv2d(channels, num_features, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(num_features, half, 3, padding=1),
            nn.Tanh(),
        )
        self.last_part = nn.Sequential(
            nn.Conv2d(half, channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``."""
        check_floating_image("x", x, channels=self.channels)
        return self.last_part(self.first_part(x))

    def extra_repr(self) -> str:
        """The scale, shown in the module's ``repr``."""
        return f"scale={self.scale}"


def recognise(sd: Mapping[str, torch.Tensor]) -> Recognised | None:
    """Recognise an ESPCN state dict (``yjn870/ESPCN-pytorch`` key names) from its keys and shapes.

    The scale follows from the last convolution's ``channels * scale**2`` outputs.
    """
    names = ("first_part.0", "first_part.2", "last_part.0")
    if set(sd) != {f"{n}.{p}" for n in names for p in ("weight", "bias")}:
        return None
    first, second = conv_channels(sd, "first_part.0.weight"), conv_channels(sd, "first_part.2.weight")
    last = conv_channels(sd, "last_part.0.weight")
    if first is None or second is None or last is None or first[1] == 0:
        return None
    features, channels = first
    squared = last[0] // channels
    scale = round(squared**0.5)
    if scale < 1 or scale * scale != squared or second[0] != features // 2:
        return None
    return {"channels": channels, "num_features": features}, scale


#: ESPCN (no presets).
SUPPORT = ArchSupport("espcn", ESPCN, recognise)
