"""EDSR baseline (Lim et al., CVPRW 2017) with BasicSR's module names.

Keys: ``conv_first``, ``body.{i}.conv1`` / ``body.{i}.conv2``, ``conv_after_body``, ``upsample.{0,2,...}``
(a 3x3 conv to ``4 * F`` (or ``9 * F`` for x3) channels followed by a pixel shuffle, one stage per factor 2),
``conv_last``. The DIV2K RGB mean is not in the state dict (BasicSR keeps it as a plain attribute; here it is a
non-persistent buffer), so BasicSR EDSR checkpoints (``params`` / ``params_ema``) load with ``strict=True``.
Like BasicSR, the network works on ``(x - mean) * img_range`` with ``img_range = 255``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from gvcore._validation import check_floating_image, check_positive_int
from gvcore.models._recognise import Recognised, conv_channels, indices
from gvcore.models._support import ArchSupport, Preset

__all__ = ["DIV2K_RGB_MEAN", "EDSR", "recognise", "upsample_stages"]

#: DIV2K training-set RGB mean, from EDSR / BasicSR.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


def upsample_stages(scale: int) -> list[int]:
    """Pixel-shuffle factors that make up ``scale``: ``[2] * n`` for ``2**n``, ``[3]`` for 3.

    Example:
        >>> upsample_stages(4), upsample_stages(3)
        ([2, 2], [3])
    """
    check_positive_int("scale", scale)
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise ValueError(f"scale must be 3 or a power of 2 for a pixel-shuffle upsampler; got {scale}")


class _ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv with an identity skip: ``x + res_scale * conv2(relu(conv1(x)))``."""

    def __init__(self, features: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(self.relu(self.conv1(x)))


class EDSR(nn.Module):
    """Enhanced Deep Residual network (baseline configuration by default).

    Args:
        scale: 2, 3, 4 (any power of two works).
        num_blocks: residual blocks (baseline: 16).
        num_features: feature channels (baseline: 64).
        res_scale: residual scaling inside the blocks (baseline: 1).
        channels: image channels.
        img_range: the network works on ``(x - mean) * img_range`` (BasicSR: 255).
        rgb_mean: per-channel mean subtracted from the input (DIV2K).

    Shape:
        - Input: ``(B, channels, h, w)``, RGB in [0, 1].
        - Output: ``(B, channels, scale*h, scale*w)``, not clamped.

    Example:
        >>> EDSR(scale=4, num_blocks=1, num_features=8)(torch.rand(1, 3, 6, 6)).shape
        torch.Size([1, 3, 24, 24])
    """

    arch: str = "edsr"
    mean: torch.Tensor

    def __init__(
        self,
        scale: int,
        num_blocks: int = 16,
        num_features: int = 64,
        res_scale: float = 1.0,
        channels: int = 3,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        """Build the head, ``num_blocks`` residual blocks, the up-sampler and the tail."""
        super().__init__()
        stages = upsample_stages(scale)
        self.scale = scale
        check_positive_int("num_blocks", num_blocks, minimum=0)
        check_positive_int("num_features", num_features)
        self.channels = check_positive_int("channels", channels)
        if len(rgb_mean) != channels:
            raise ValueError(f"rgb_mean must have {channels} values; got {len(rgb_mean)}")
        if not img_range > 0:
            raise ValueError(f"img_range must be > 0; got {img_range}")
        self.img_range = float(img_range)
        self.register_buffer(
            "mean", torch.tensor([float(m) for m in rgb_mean]).view(1, channels, 1, 1), persistent=False
        )
        self.conv_first = nn.Conv2d(channels, num_features, 3, padding=1)
        self.body = nn.Sequential(*(_ResidualBlockNoBN(num_features, res_scale) for _ in range(num_blocks)))
        self.conv_after_body = nn.Conv2d(num_features, num_features, 3, padding=1)
        upsample: list[nn.Module] = []
        for factor in stages:
            upsample += [nn.Conv2d(num_features, factor * factor * num_features, 3, padding=1)]
            upsample += [nn.PixelShuffle(factor)]
        self.upsample = nn.Sequential(*upsample)
        self.conv_last = nn.Conv2d(num_features, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``."""
        check_floating_image("x", x, channels=self.channels)
        mean = self.mean.to(dtype=x.dtype)
        feat = self.conv_first((x - mean) * self.img_range)
        feat = feat + self.conv_after_body(self.body(feat))
        return self.conv_last(self.upsample(feat)) / self.img_range + mean

    def extra_repr(self) -> str:
        """Scale and input range, shown in the module's ``repr``."""
        return f"scale={self.scale}, img_range={self.img_range}"


def recognise(sd: Mapping[str, torch.Tensor]) -> Recognised | None:
    """Recognise an EDSR state dict (BasicSR key names) from its keys and shapes.

    The scale follows from the up-sampler (one x2/x3 stage, or x2 stages).
    """
    keys = set(sd)
    blocks = len(indices(keys, r"body\.(\d+)\.conv1\.weight"))
    stages = len(indices(keys, r"upsample\.(\d+)\.weight"))
    names = ["conv_first", "conv_after_body", "conv_last"]
    names += [f"body.{i}.conv{j}" for i in range(blocks) for j in (1, 2)]
    names += [f"upsample.{2 * i}" for i in range(stages)]
    if stages == 0 or keys != {f"{n}.{p}" for n in names for p in ("weight", "bias")}:
        return None
    first, up = conv_channels(sd, "conv_first.weight"), conv_channels(sd, "upsample.0.weight")
    if first is None or up is None or first[0] == 0:
        return None
    features = first[0]
    ratio = up[0] // features
    if stages == 1 and ratio in (4, 9):
        scale = 2 if ratio == 4 else 3
    elif ratio == 4:
        scale = 2**stages
    else:
        return None
    kwargs: dict[str, Any] = {"num_blocks": blocks, "num_features": features, "channels": first[1]}
    if features == 256:  # BasicSR's EDSR_L configs (32 blocks, 256 features) train with res_scale 0.1
        kwargs["res_scale"] = 0.1
    return kwargs, scale


#: EDSR (baseline) and its CPU preset (``edsr-lite``: 4 residual blocks, 32 features; trains in minutes on 2 CPU
#: cores).
SUPPORT = ArchSupport(
    "edsr",
    EDSR,
    recognise,
    presets=(Preset("edsr-lite", EDSR, {"num_blocks": 4, "num_features": 32}),),
)
