"""VDSR (Kim et al., CVPR 2016) as used by the Gradient Variance paper (Abrahamyan et al., ICASSP 2022).

The network sees the LR image interpolated to the HR size, runs ``num_layers`` 3x3 convolutions without biases
(ReLU after all but the last) and adds the result to the interpolated input (global residual).

State-dict keys follow the official GV repository (``lusinlu/gradient-variance-loss``, itself a port of the
classic PyTorch VDSR): ``input.weight``, ``residual_layer.{i}.conv.weight`` (``num_layers - 2`` blocks) and
``output.weight``. With ``out_channels=1`` the output conv has one channel that is broadcast-added to all three
input channels, exactly as the official model, so its ``.pth`` files load with ``strict=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gvcore._validation import check_choice, check_floating_image, check_positive_int
from gvcore.models._recognise import Recognised, conv_channels, indices
from gvcore.models._support import ArchSupport, Preset
from gvcore.resize import imresize

__all__ = ["VDSR", "Interpolation", "recognise", "upsample_input"]

Interpolation = Literal["bicubic", "bilinear", "matlab"]
_INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "matlab")


def upsample_input(x: torch.Tensor, scale: int, interpolation: Interpolation = "bicubic") -> torch.Tensor:
    """Interpolate an LR batch to the HR size, the input VDSR refines.

    Args:
        x: LR images, ``(B, C, h, w)``, floating point.
        scale: integer upscaling factor.
        interpolation: ``"bicubic"`` (``F.interpolate``, a = -0.75, ``align_corners=False``; fast, any device),
            ``"bilinear"`` (the official GV repository's LR protocol) or ``"matlab"`` (``gvcore.imresize``,
            MATLAB-compatible bicubic, a = -0.5; needs ``gvcore/resize.py``).

    Returns:
        ``(B, C, scale*h, scale*w)``, same dtype and device; values are not clamped.
    """
    if interpolation == "matlab":
        return imresize(x, scale)
    return F.interpolate(x, scale_factor=scale, mode=interpolation, align_corners=False)


class _ConvReLUBlock(nn.Module):
    """3x3 conv (no bias) + ReLU; the attribute name ``conv`` is part of the official key layout."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(features, features, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    """Very Deep Super-Resolution network with an internal interpolation step.

    Args:
        scale: upscaling factor (2, 3, 4, ...).
        num_layers: total conv layers including input and output conv (paper: 20).
        num_features: feature channels (paper: 64).
        in_channels: image channels (3 for RGB).
        out_channels: channels of the residual; ``1`` reproduces the official GV model (one residual added
            to every input channel), otherwise must equal ``in_channels``.
        interpolation: how the LR input is brought to the HR size, see :func:`upsample_input`.

    Shape:
        - Input: ``(B, in_channels, h, w)``, RGB in [0, 1].
        - Output: ``(B, in_channels, scale*h, scale*w)``, not clamped.

    Example:
        >>> model = VDSR(scale=2, num_layers=4, num_features=8)
        >>> model(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """

    arch: str = "vdsr"

    def __init__(
        self,
        scale: int,
        num_layers: int = 20,
        num_features: int = 64,
        in_channels: int = 3,
        out_channels: int = 3,
        interpolation: Interpolation = "bicubic",
    ) -> None:
        """Validate the options and build the ``num_layers`` convolutions of the residual branch."""
        super().__init__()
        self.scale = check_positive_int("scale", scale)
        check_positive_int("num_layers", num_layers, minimum=2)
        check_positive_int("num_features", num_features)
        self.in_channels = check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        if out_channels not in (1, in_channels):
            raise ValueError(f"out_channels must be 1 or in_channels ({in_channels}); got {out_channels}")
        check_choice("interpolation", interpolation, _INTERPOLATIONS)
        self.interpolation: Interpolation = interpolation
        self.input = nn.Conv2d(in_channels, num_features, 3, padding=1, bias=False)
        self.residual_layer = nn.Sequential(*(_ConvReLUBlock(num_features) for _ in range(num_layers - 2)))
        self.output = nn.Conv2d(num_features, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        for module in self.modules():  # the official init: N(0, sqrt(2 / (k*k*out)))
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``."""
        check_floating_image("x", x, channels=self.in_channels)
        upsampled = upsample_input(x, self.scale, self.interpolation)
        out = self.relu(self.input(upsampled))
        out = self.output(self.residual_layer(out))
        return upsampled + out  # a 1-channel residual broadcasts over the colour channels

    def extra_repr(self) -> str:
        """Scale and interpolation, shown in the module's ``repr``."""
        return f"scale={self.scale}, interpolation={self.interpolation!r}"


def recognise(sd: Mapping[str, torch.Tensor]) -> Recognised | None:
    """Recognise a VDSR state dict (the official GV repository's key names) from its keys and shapes.

    Returns ``(arch_kwargs, None)``: VDSR works at any scale, the weights do not say which.
    """
    keys = set(sd)
    blocks = len(indices(keys, r"residual_layer\.(\d+)\.conv\.weight"))
    expected = {"input.weight", "output.weight"} | {f"residual_layer.{i}.conv.weight" for i in range(blocks)}
    first, last = conv_channels(sd, "input.weight"), conv_channels(sd, "output.weight")
    if keys != expected or first is None or last is None:
        return None
    kwargs = {
        "num_layers": blocks + 2,
        "num_features": first[0],
        "in_channels": first[1],
        "out_channels": last[0],
    }
    return kwargs, None


#: VDSR and its CPU preset (``vdsr-lite``: 8 conv layers, 32 features; trains in minutes on 2 CPU cores).
SUPPORT = ArchSupport(
    "vdsr",
    VDSR,
    recognise,
    presets=(Preset("vdsr-lite", VDSR, {"num_layers": 8, "num_features": 32}),),
)
