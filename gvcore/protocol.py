"""The evaluation protocols: one record per protocol, and the operations that apply it.

A protocol says how an HR image becomes the LR input, what the interpolation baseline is, whether outputs are
put on the 8-bit grid before scoring, and how PSNR/SSIM read the images (luma, border crop, SSIM filtering).
Everything gvcore knows about a protocol is in its :class:`ProtocolSpec` here (PAPER.md, "Evaluation
protocols"):

=====================  ==========================================  ============================================
                       ``"standard"`` (BasicSR / MATLAB)           ``"official"`` (the official GV code)
=====================  ==========================================  ============================================
LR synthesis           HR cropped to a multiple of the scale,      PIL ``Image.BILINEAR`` of the *whole* image
                       MATLAB bicubic (:func:`gvcore.imresize`)    to ``(H // s, W // s)``
baseline               ``bicubic`` (MATLAB)                        ``bilinear`` (PIL; the official VDSR input)
8-bit policy           outputs clamped and rounded to 8 bits       raw outputs, neither clamped nor rounded
PSNR                   BT.601 Y (+16), ``scale`` px cropped        RGB, no crop
SSIM                   BT.601 Y (+16), ``scale`` px cropped,       luma ``(65.738 R + 129.057 G + 25.064 B)
                       valid-region statistics                     / 256``, 2 px cropped, symmetric padding
GMSD / MS-SSIM         luma, ``scale`` px cropped                  luma, no crop
=====================  ==========================================  ============================================

A protocol name is validated once, where it enters (:meth:`Protocol.parse`; a command-line option, a public
function's argument, a page's control), and passed down as the :class:`Protocol` member. :class:`Protocol` is a
``StrEnum``: a member *is* its name (``Protocol.STANDARD == "standard"``), so it is written to tables, URLs
and JSON as the plain name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import torch
from PIL import Image

from gvcore._validation import check_positive_int
from gvcore.resize import imresize

__all__ = [
    "PROTOCOLS",
    "MetricOptions",
    "Protocol",
    "ProtocolLike",
    "ProtocolSpec",
    "make_lr",
    "mod_crop",
    "pil_bilinear_resize",
    "prepare_pair",
    "quantize_8bit",
    "score_ready",
    "upscale_baseline",
]

#: Fixed border crop of the official GV SSIM.
OFFICIAL_SSIM_CROP = 2

Luma = Literal["bt601", "official"]


@dataclass(frozen=True)
class MetricOptions:
    """How a metric reads its inputs: border crop, luma (``None`` = the channels given), SSIM filter boundary."""

    crop: int
    luma: Luma | None
    boundary: Literal["valid", "symmetric"] = "valid"


@dataclass(frozen=True)
class _MetricRule:
    """A protocol's rule for one metric: crop ``scale`` pixels or a fixed number, which luma, which boundary."""

    crop_scale: bool
    fixed_crop: int
    luma: Luma | None
    boundary: Literal["valid", "symmetric"]

    def options(self, scale: int) -> MetricOptions:
        return MetricOptions(scale if self.crop_scale else self.fixed_crop, self.luma, self.boundary)


@dataclass(frozen=True)
class ProtocolSpec:
    """Everything one protocol decides (the table of the module docstring)."""

    #: how LR is made: MATLAB bicubic of the mod-cropped HR, or PIL bilinear of the whole image
    lr_resample: Literal["matlab-bicubic", "pil-bilinear"]
    #: the interpolation baseline's name in every table
    baseline: str
    #: the ``lr_source`` of a synthesised LR image in evaluation tables
    lr_source: str
    #: outputs are clamped and rounded to 8 bits before scoring
    quantize_outputs: bool
    psnr: _MetricRule
    ssim: _MetricRule
    #: GMSD and MS-SSIM crop ``scale`` pixels (else none)
    perceptual_crop_scale: bool


_SPECS: dict[str, ProtocolSpec] = {
    "standard": ProtocolSpec(
        lr_resample="matlab-bicubic",
        baseline="bicubic",
        lr_source="synth:bicubic",
        quantize_outputs=True,
        psnr=_MetricRule(crop_scale=True, fixed_crop=0, luma="bt601", boundary="valid"),
        ssim=_MetricRule(crop_scale=True, fixed_crop=0, luma="bt601", boundary="valid"),
        perceptual_crop_scale=True,
    ),
    "official": ProtocolSpec(
        lr_resample="pil-bilinear",
        baseline="bilinear",
        lr_source="synth:bilinear",
        quantize_outputs=False,
        psnr=_MetricRule(crop_scale=False, fixed_crop=0, luma=None, boundary="valid"),
        ssim=_MetricRule(
            crop_scale=False, fixed_crop=OFFICIAL_SSIM_CROP, luma="official", boundary="symmetric"
        ),
        perceptual_crop_scale=False,
    ),
}


class Protocol(StrEnum):
    """An evaluation protocol; each member carries its :class:`ProtocolSpec` (``Protocol.STANDARD.spec``).

    Example:
        >>> Protocol.parse("official").baseline
        'bilinear'
        >>> Protocol.parse("matlab")
        Traceback (most recent call last):
        ...
        ValueError: protocol must be one of 'standard', 'official'; got 'matlab'
    """

    STANDARD = "standard"
    OFFICIAL = "official"

    @classmethod
    def _missing_(cls, value: object) -> Protocol:
        listed = ", ".join(repr(p.value) for p in cls)
        raise ValueError(f"protocol must be one of {listed}; got {value!r}")

    @classmethod
    def parse(cls, value: object) -> Protocol:
        """The member named ``value`` (a member is returned as is); a clear ``ValueError`` for anything else."""
        if isinstance(value, Protocol):
            return value
        if not isinstance(value, str):
            raise TypeError(f"protocol must be a str; got {type(value).__name__} {value!r}")
        return cls(value)

    @property
    def spec(self) -> ProtocolSpec:
        """This protocol's record."""
        return _SPECS[self.value]

    @property
    def baseline(self) -> str:
        """The interpolation baseline's name in tables (``bicubic`` / ``bilinear``)."""
        return self.spec.baseline

    @property
    def lr_source(self) -> str:
        """The ``lr_source`` of a synthesised LR image in evaluation tables."""
        return self.spec.lr_source

    def metric_options(
        self, metric: Literal["psnr", "ssim"], crop_border: int | None, y_channel: bool | None
    ) -> MetricOptions:
        """How ``metric`` reads its inputs under this protocol, checking the explicit arguments against it.

        The standard protocol crops ``scale`` pixels, which the caller passes as ``crop_border`` (there is no
        default scale); the official one fixes crop and channel, so both must be left unset.
        """
        rule = self.spec.psnr if metric == "psnr" else self.spec.ssim
        if rule.crop_scale:
            if crop_border is None:
                raise ValueError(
                    f"protocol={self.value!r} crops `scale` pixels: pass crop_border=scale "
                    "(e.g. crop_border=4 for x4)"
                )
            if y_channel is False and rule.luma is not None:
                raise ValueError(f"protocol={self.value!r} scores the Y channel; got y_channel=False")
            return rule.options(check_positive_int("crop_border", crop_border, minimum=0))
        if crop_border is not None or y_channel is not None:
            raise ValueError(
                f"protocol={self.value!r} fixes the crop and channel of {metric}; leave crop_border and "
                f"y_channel unset (got crop_border={crop_border!r}, y_channel={y_channel!r})"
            )
        return rule.options(0)

    def perceptual_crop(self, scale: int) -> int:
        """The border GMSD and MS-SSIM crop under this protocol."""
        return scale if self.spec.perceptual_crop_scale else 0


#: a protocol as accepted where it enters gvcore: the member or its name.
ProtocolLike = Protocol | Literal["standard", "official"]
#: the protocol names, in display order (command-line choices, page controls).
PROTOCOLS: tuple[str, ...] = tuple(p.value for p in Protocol)


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[0, 1]`` and round to the 256 levels ``k / 255`` (what saving an 8-bit PNG does).

    Args:
        x: floating tensor of any shape, nominally in ``[0, 1]``.

    Returns:
        Tensor of the same shape, dtype and device with values in ``{0, 1/255, ..., 1}``.

    Example:
        >>> quantize_8bit(torch.tensor([-0.2, 0.5, 0.1234, 1.7])).mul(255).tolist()
        [0.0, 128.0, 31.0, 255.0]
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point torch.Tensor; got {getattr(x, 'dtype', type(x).__name__)}"
        )
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def score_ready(raw: torch.Tensor, protocol: ProtocolLike) -> torch.Tensor:
    """A network output as the protocol scores it: float32 on the 8-bit grid (standard) or raw (official).

    Example:
        >>> score_ready(torch.tensor([[-0.1, 0.5004, 1.2]]), "standard").mul(255).tolist()
        [[0.0, 128.0, 255.0]]
        >>> score_ready(torch.tensor([[-0.1, 1.2]]), "official").tolist()  # unclamped, as the official code
        [[-0.10000000149011612, 1.2000000476837158]]
    """
    spec = Protocol.parse(protocol).spec
    x = raw.float()
    return quantize_8bit(x) if spec.quantize_outputs else x


def mod_crop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of ``(..., H, W)`` so ``H`` and ``W`` are multiples of ``scale`` (BasicSR)."""
    h, w = x.shape[-2] - x.shape[-2] % scale, x.shape[-1] - x.shape[-1] % scale
    return x[..., :h, :w]


def pil_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's ``Image.resize(size[::-1], Image.Resampling.BILINEAR)`` of each image of a batch, what the official GV code does.

    PIL's bilinear is a triangle filter stretched by the scale factor when shrinking (antialiased) and computed
    in fixed point on 8-bit images; it is *not* ``F.interpolate(mode="bilinear", antialias=True)`` (they differ
    by one 8-bit level on 9-17 % of pixels, PAPER.md). Images on the 8-bit grid go through PIL as 8-bit RGB /
    L images exactly as the official code's; others (16-bit sources) are resized channel by channel in PIL's
    float mode ``"F"`` and rounded to 8 bits.

    Args:
        x: ``(B, C, H, W)`` float in [0, 1], ``C`` = 1 or 3.
        size: ``(height, width)`` of the result.

    Returns:
        ``(B, C, height, width)`` float32 on the 8-bit grid, on ``x``'s device.

    Example:
        >>> pil_bilinear_resize(torch.zeros(1, 3, 8, 12), (4, 6)).shape
        torch.Size([1, 3, 4, 6])
    """
    h, w = size
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be (B, 1 or 3, H, W); got shape {tuple(x.shape)}")
    if h < 1 or w < 1:
        raise ValueError(f"size must be at least 1x1; got {h}x{w}")
    cpu = x.detach().float().cpu()
    levels = (cpu.clamp(0.0, 1.0) * 255.0).round()
    on_grid = bool((levels / 255.0 - cpu).abs().max() <= 1e-6)
    out = []
    for image in cpu if not on_grid else levels:
        if on_grid:
            array = image.to(torch.uint8).permute(1, 2, 0).numpy()
            mode_array = array[..., 0] if array.shape[-1] == 1 else array
            resized = np.asarray(Image.fromarray(mode_array).resize((w, h), Image.Resampling.BILINEAR))
            t = torch.from_numpy(resized.copy()).float().reshape(h, w, -1).permute(2, 0, 1) / 255.0
        else:
            channels = [
                torch.from_numpy(
                    np.asarray(
                        Image.fromarray(c.numpy(), mode="F").resize((w, h), Image.Resampling.BILINEAR)
                    ).copy()
                )
                for c in image
            ]
            t = quantize_8bit(torch.stack(channels))
        out.append(t)
    return torch.stack(out).to(x.device)


def make_lr(
    hr: torch.Tensor, scale: int, protocol: ProtocolLike = "standard", quantize: bool = True
) -> torch.Tensor:
    """Synthesise the LR image of an HR batch.

    Args:
        hr: ``(B, C, H, W)`` float in [0, 1]. ``"standard"``: ``H`` and ``W`` must be multiples of ``scale``
            (see :func:`mod_crop`). ``"official"``: any size; the result is ``(H // scale, W // scale)``
            resized from the whole image, as the official ``ValidationDataset`` does.
        scale: integer downscaling factor.
        protocol: ``"standard"`` (MATLAB bicubic, :func:`gvcore.imresize`) or ``"official"`` (PIL's
            ``Image.BILINEAR``, :func:`pil_bilinear_resize`, always 8-bit).
        quantize: clamp and round to 8 bits, as an LR image saved to PNG (the official LR is 8-bit anyway).

    Returns:
        ``(B, C, H // scale, W // scale)`` float32, on ``hr``'s device.

    Example:
        >>> make_lr(torch.rand(1, 3, 8, 12), 2).shape
        torch.Size([1, 3, 4, 6])
    """
    check_positive_int("scale", scale)
    spec = Protocol.parse(protocol).spec
    h, w = hr.shape[-2], hr.shape[-1]
    size = (h // scale, w // scale)
    if spec.lr_resample == "pil-bilinear":
        return pil_bilinear_resize(hr, size)
    if h % scale or w % scale:
        raise ValueError(f"hr size {h}x{w} must be a multiple of scale {scale}; crop it with mod_crop first")
    lr = imresize(hr, size=size)
    return quantize_8bit(lr) if quantize else lr


def prepare_pair(
    hr: torch.Tensor, scale: int, protocol: ProtocolLike = "standard"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lr, hr_cropped)`` of a whole HR image as the protocol makes them (the one place LR is synthesised).

    ``"standard"``: HR cropped to a multiple of ``scale`` (:func:`mod_crop`), LR = MATLAB bicubic of the crop.
    ``"official"``: LR = PIL bilinear of the *whole* image to ``(H // s, W // s)`` as the official
    ``ValidationDataset`` does, HR cropped to ``s * LR`` (the official code itself fails on sides that are not
    multiples of ``s``; for those that are, the two coincide).

    Example:
        >>> lr, hr = prepare_pair(torch.rand(1, 3, 9, 10), 2, "official")
        >>> tuple(lr.shape), tuple(hr.shape)
        ((1, 3, 4, 5), (1, 3, 8, 10))
    """
    protocol = Protocol.parse(protocol)
    cropped = mod_crop(hr, scale)
    if min(cropped.shape[-2:]) < 1:
        raise ValueError(f"image {hr.shape[-2]}x{hr.shape[-1]} is smaller than the scale {scale}")
    whole = protocol.spec.lr_resample == "pil-bilinear"
    return make_lr(hr if whole else cropped, scale, protocol), cropped


def upscale_baseline(lr: torch.Tensor, scale: int, protocol: ProtocolLike = "standard") -> torch.Tensor:
    """The interpolation baseline of a protocol, on the 8-bit grid, ``(B, C, scale*h, scale*w)``.

    ``"standard"``: MATLAB bicubic (:func:`gvcore.imresize`), clamped and rounded. ``"official"``: PIL bilinear
    up-sampling, which is exactly the input the official VDSR receives (``ValidationDataset``).
    Its name in tables is ``Protocol.parse(protocol).baseline``.
    """
    check_positive_int("scale", scale)
    spec = Protocol.parse(protocol).spec
    size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if spec.lr_resample == "pil-bilinear":
        return pil_bilinear_resize(lr, size)
    return quantize_8bit(imresize(lr, size=size))
