"""PSNR and SSIM under the standard SR protocol (BasicSR / MATLAB) and the official GV evaluation.

Both metrics take ``(B, C, H, W)`` floating tensors in ``[0, data_range]`` and return one float64 value per
image, shape ``(B,)``. Internally images are put on the 8-bit scale ``[0, 255]`` (as BasicSR does with 8-bit
images) and everything is computed in float64, vectorised over the batch (CPU or CUDA, following the input).

**Quantisation.** The standard protocol scores SR outputs that were clamped and rounded to 8-bit levels
before scoring. These functions never round silently: call :func:`gvcore.protocol.quantize_8bit` on network outputs first
(inputs already read from 8-bit files are on the 8-bit grid).

**Protocols** (PAPER.md), selected with ``protocol=``:

* ``None`` (default) -- exactly the ``crop_border`` / ``y_channel`` you pass (BasicSR's
  ``calculate_psnr`` / ``calculate_ssim`` arguments).
* ``"standard"`` -- BasicSR: Y channel of BT.601 YCbCr with the +16 offset (``Y in [16, 235]``), border of
  ``scale`` pixels cropped. Pass ``crop_border=scale`` explicitly (there is no default scale);
  ``y_channel`` may be left unset or set ``True``.
* ``"official"`` -- the official GV code (``benchmark.py``, ``utils.calc_ssim``; PAPER.md "The official
  evaluation, line by line"): PSNR on RGB, no crop; SSIM on the luma ``(65.738 R + 129.057 G + 25.064 B) / 256``
  (8-bit scale, no +16 offset), a fixed 2-pixel shave, and the Gaussian statistics computed over the *whole*
  shaved map with symmetric padding (``scipy.signal.convolve2d(mode='same', boundary='symm')``).
  ``crop_border`` and ``y_channel`` are fixed by the preset and must be left unset. The official code scores
  unclamped, unrounded predictions: do not quantise outputs for this protocol.

:func:`evaluate_pair` returns both numbers for a ``scale`` and a protocol name. Both metrics are
higher-is-better (``psnr.higher_is_better``, ``ssim.higher_is_better``, :data:`HIGHER_IS_BETTER`).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from gvcore._validation import check_floating_image, check_positive_int, check_same_shape
from gvcore.color import _BT601_Y, OFFICIAL_LUMA
from gvcore.protocol import MetricOptions, Protocol, ProtocolLike

__all__ = [
    "HIGHER_IS_BETTER",
    "PairMetrics",
    "evaluate_pair",
    "gaussian_window_1d",
    "psnr",
    "ssim",
]

#: Direction of each metric (torchmetrics' ``higher_is_better``).
HIGHER_IS_BETTER: dict[str, bool] = {"psnr": True, "ssim": True}

#: SSIM constants (Wang et al. 2004; BasicSR), window 11x11, sigma 1.5, on the 8-bit scale.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2


class PairMetrics(NamedTuple):
    """PSNR (dB) and SSIM of a batch, each ``(B,)`` float64."""

    psnr: torch.Tensor
    ssim: torch.Tensor


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian (OpenCV ``getGaussianKernel``); its outer product is the SSIM window.

    Example:
        >>> w = gaussian_window_1d()
        >>> tuple(w.shape), round(w.sum().item(), 12), w.dtype
        ((11,), 1.0, torch.float64)
    """
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    return g / g.sum()


def _options(
    name: Literal["psnr", "ssim"],
    protocol: ProtocolLike | None,
    crop_border: int | None,
    y_channel: bool | None,
) -> MetricOptions:
    """How a metric reads its inputs: the protocol's rule (:mod:`gvcore.protocol`), else the explicit arguments."""
    if protocol is not None:
        return Protocol.parse(protocol).metric_options(name, crop_border, y_channel)
    crop = 0 if crop_border is None else check_positive_int("crop_border", crop_border, minimum=0)
    if y_channel is not None and not isinstance(y_channel, bool):
        raise TypeError(f"y_channel must be a bool; got {type(y_channel).__name__} {y_channel!r}")
    return MetricOptions(crop, "bt601" if y_channel else None, "valid")


def _validate(
    name: str,
    sr: torch.Tensor,
    hr: torch.Tensor,
    preset: MetricOptions,
    data_range: float,
    min_size: int,
) -> None:
    """Check a metric's inputs once per call (the one place these errors are raised)."""
    crop = preset.crop
    check_floating_image("sr", sr, channels=(1, 3) if preset.luma is None else 3)
    check_floating_image("hr", hr)
    check_same_shape("sr", sr, "hr", hr)
    if sr.shape[0] == 0:
        raise ValueError(f"sr and hr must hold at least one image; got shape {tuple(sr.shape)}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a number > 0; got {data_range!r}")
    h, w = sr.shape[-2] - 2 * crop, sr.shape[-1] - 2 * crop
    if h < min_size or w < min_size:
        raise ValueError(
            f"{name} needs at least {min_size}x{min_size} pixels after cropping crop_border={crop} on each side; "
            f"images are {sr.shape[-2]}x{sr.shape[-1]}"
        )


def _prepare(
    sr: torch.Tensor, hr: torch.Tensor, preset: MetricOptions, data_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale to [0, 255] float64, take the luma if asked, crop (inputs already checked by :func:`_validate`)."""
    out = []
    crop = preset.crop
    for img in (sr, hr):
        if crop:
            img = img[..., crop:-crop, crop:-crop]
        x = img.to(torch.float64)
        if preset.luma is not None:
            # gvcore.color.rgb_to_y (or the official luma) of x / data_range as one fused weighted sum
            coefficients = _BT601_Y if preset.luma == "bt601" else OFFICIAL_LUMA
            weights = torch.tensor(coefficients, dtype=torch.float64, device=x.device) / data_range
            x = torch.einsum("bchw,c->bhw", x, weights).unsqueeze(1)
            if preset.luma == "bt601":
                x = x + 16.0
        elif data_range != 255.0:
            x = x * (255.0 / data_range)
        out.append(x)
    return out[0], out[1]


def psnr(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int | None = None,
    y_channel: bool | None = None,
    data_range: float = 1.0,
    protocol: ProtocolLike | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, BasicSR's ``calculate_psnr`` on 8-bit-scaled float64 data.

    ``PSNR = 10 log10(255^2 / MSE)`` with the MSE over the (cropped) pixels and channels of each image;
    ``inf`` for identical images. NaN in an input gives NaN for that image.

    Args:
        sr: ``(B, C, H, W)`` floating tensor in ``[0, data_range]``, ``C`` = 1 or 3 (3 when ``y_channel``).
        hr: reference, same shape.
        crop_border: pixels removed on each side before scoring (``None`` = 0; see the protocols above).
        y_channel: score the BT.601 Y channel (with +16) instead of the channels given (``None`` = False).
        data_range: value of white in the inputs (1.0 for ``[0, 1]``, 255.0 for ``[0, 255]``).
        protocol: ``None``, ``"standard"`` or ``"official"`` (module docstring).

    Returns:
        ``(B,)`` float64 tensor of PSNR in dB on ``sr``'s device.

    Shape:
        - Input: ``(B, C, H, W)``
        - Output: ``(B,)``

    Example:
        >>> hr = torch.full((2, 3, 8, 8), 0.5)
        >>> psnr(hr, hr).tolist()
        [inf, inf]
        >>> psnr(hr + 1 / 255, hr).round(decimals=4).tolist()  # MSE = 1 on the 8-bit scale
        [48.1308, 48.1308]
    """
    preset = _options("psnr", protocol, crop_border, y_channel)
    _validate("psnr", sr, hr, preset, data_range, min_size=1)
    return torch.cat([_psnr_prepared(*_prepare(a, b, preset, data_range)) for a, b in _image_chunks(sr, hr)])


def _psnr_prepared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a - b).square().flatten(1).mean(dim=1)
    return torch.where(mse == 0, torch.full_like(mse, math.inf), 10.0 * torch.log10(255.0**2 / mse))


#: Images per chunk on CPU: the five statistics of a chunk stay cache-resident while filtered (measured fastest).
_CPU_CHUNK = 2


def _image_chunks(sr: torch.Tensor, hr: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batch in chunks of :data:`_CPU_CHUNK` images on CPU (whole on accelerators).

    On CPU every metric runs chunk by chunk from the float64 conversion on, so its temporaries stay small and
    cache-resident: fresh full-batch float64 temporaries cost more in page faults than the arithmetic.
    """
    if sr.device.type != "cpu":
        return [(sr, hr)]
    return [(sr[i : i + _CPU_CHUNK], hr[i : i + _CPU_CHUNK]) for i in range(0, sr.shape[0], _CPU_CHUNK)]


def _filter_valid_shifted(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable valid-region filter of ``(N, H, W)`` as shifted multiply-adds (fast on CPU, float64)."""
    k = len(taps)
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = x[:, 0:h] * taps[0]
    for i in range(1, k):
        rows.add_(x[:, i : i + h], alpha=taps[i])
    out = rows[:, :, 0:w] * taps[0]
    for i in range(1, k):
        out.add_(rows[:, :, i : i + w], alpha=taps[i])
    return out


def _filter_valid_conv(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Same as :func:`_filter_valid_shifted` with two ``conv2d`` passes (used on accelerators)."""
    k = window.numel()
    y = F.conv2d(x.unsqueeze(1), window.view(1, 1, k, 1))
    return F.conv2d(y, window.view(1, 1, 1, k)).squeeze(1)


def _pad_symmetric(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Pad the last two dims by ``radius`` with the edge repeated, for any size.

    This is ``scipy``'s ``boundary='symm'`` and numpy's ``'symmetric'`` (``x[-1] = x[0]``); the reflection is
    periodic, as scipy's.
    """

    def index(n: int) -> torch.Tensor:
        i = torch.remainder(torch.arange(-radius, n + radius, device=x.device), 2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)

    return x.index_select(-2, index(x.shape[-2])).index_select(-1, index(x.shape[-1]))


def _ssim_map_mean(
    a: torch.Tensor,
    b: torch.Tensor,
    use_conv: bool | None = None,
    boundary: Literal["valid", "symmetric"] = "valid",
) -> torch.Tensor:
    """Mean SSIM map per image and channel, ``(B, C)``, 11x11 Gaussian window.

    ``boundary="valid"`` (BasicSR): the map covers the valid region only. ``"symmetric"`` (the official GV
    ``calc_ssim``, ``scipy.signal.convolve2d(mode='same', boundary='symm')``): the map has the input's size,
    the statistics near the border read the symmetrically padded image.

    ``a``, ``b``: ``(B, C, H, W)`` float64 on the 8-bit scale. On CPU the images are processed a few at a time
    with shifted multiply-adds (float64 convolution has no fast CPU kernel in torch); elsewhere with conv2d.
    """
    if boundary == "symmetric":
        a, b = _pad_symmetric(a, SSIM_WINDOW // 2), _pad_symmetric(b, SSIM_WINDOW // 2)
    bsz, ch, h, w = a.shape
    if use_conv is None:
        use_conv = a.device.type != "cpu"
    window = gaussian_window_1d().to(device=a.device)
    taps = window.tolist()
    a2, b2 = a.reshape(bsz * ch, h, w), b.reshape(bsz * ch, h, w)
    step = a2.shape[0] if use_conv else _CPU_CHUNK
    means = []
    for start in range(0, a2.shape[0], step):
        x, y = a2[start : start + step], b2[start : start + step]
        # Only sigma1^2 + sigma2^2 enters SSIM, so E[x^2] + E[y^2] is filtered as one map (filters are linear).
        stats = torch.cat([x, y, x * x + y * y, x * y])
        stats = _filter_valid_conv(stats, window) if use_conv else _filter_valid_shifted(stats, taps)
        mu1, mu2, e_sq, e12 = stats.chunk(4)
        mu_sq, mu12 = mu1 * mu1 + mu2 * mu2, mu1 * mu2
        num = (2.0 * mu12 + SSIM_C1) * (2.0 * (e12 - mu12) + SSIM_C2)
        den = (mu_sq + SSIM_C1) * ((e_sq - mu_sq) + SSIM_C2)
        means.append((num / den).flatten(1).mean(dim=1))
    return torch.cat(means).view(bsz, ch)


def ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int | None = None,
    y_channel: bool | None = None,
    data_range: float = 1.0,
    protocol: ProtocolLike | None = None,
) -> torch.Tensor:
    """Structural similarity per image, BasicSR's ``calculate_ssim`` on 8-bit-scaled float64 data.

    11x11 Gaussian window (sigma 1.5, normalised outer product), ``C1 = (0.01*255)^2``,
    ``C2 = (0.03*255)^2``, statistics over the *valid* region only (no padding), mean of the SSIM map. For
    several channels the result is the mean of the per-channel SSIMs (BasicSR). Identical images give 1.

    Args:
        sr: ``(B, C, H, W)`` floating tensor in ``[0, data_range]``, ``C`` = 1 or 3 (3 when ``y_channel``).
        hr: reference, same shape.
        crop_border: pixels removed on each side before scoring (``None`` = 0; see the protocols above).
        y_channel: score the BT.601 Y channel (with +16) instead of the channels given (``None`` = False).
        data_range: value of white in the inputs.
        protocol: ``None``, ``"standard"`` or ``"official"`` (module docstring).

    Returns:
        ``(B,)`` float64 tensor on ``sr``'s device. Needs at least 11x11 pixels after cropping.

    Shape:
        - Input: ``(B, C, H, W)``
        - Output: ``(B,)``

    Example:
        >>> hr = torch.rand(2, 3, 16, 16)
        >>> ssim(hr, hr).tolist()
        [1.0, 1.0]
        >>> bool((ssim(hr.flip(-1), hr, protocol="standard", crop_border=2) < 1).all())
        True
    """
    preset = _options("ssim", protocol, crop_border, y_channel)
    _validate("ssim", sr, hr, preset, data_range, min_size=SSIM_WINDOW)
    parts = []
    for sr_part, hr_part in _image_chunks(sr, hr):
        a, b = _prepare(sr_part, hr_part, preset, data_range)
        parts.append(_ssim_map_mean(a, b, boundary=preset.boundary).mean(dim=1))
    return torch.cat(parts)


psnr.higher_is_better = True  # type: ignore[attr-defined]
ssim.higher_is_better = True  # type: ignore[attr-defined]


def evaluate_pair(
    sr: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    protocol: ProtocolLike = "standard",
    data_range: float = 1.0,
) -> PairMetrics:
    """PSNR and SSIM of a batch under a named protocol.

    ``"standard"`` crops ``scale`` pixels and scores Y (BasicSR); ``"official"`` ignores ``scale`` for the
    crop (RGB PSNR uncropped, offset-free luma SSIM with a 2-pixel crop). Inputs are not quantised: apply
    :func:`gvcore.protocol.quantize_8bit` to SR outputs first for numbers comparable with the literature.

    Args:
        sr: ``(B, 3, H, W)`` floating tensor in ``[0, data_range]``.
        hr: reference, same shape (crop HR to a multiple of ``scale`` before synthesising LR).
        scale: SR scale factor (``>= 1``).
        protocol: ``"standard"`` or ``"official"``.
        data_range: value of white in the inputs.

    Returns:
        :class:`PairMetrics` ``(psnr, ssim)``, each ``(B,)`` float64.

    Example:
        >>> hr = torch.rand(1, 3, 32, 32)
        >>> m = evaluate_pair(hr, hr, scale=4)
        >>> m.psnr.item(), m.ssim.item()
        (inf, 1.0)
    """
    scale = check_positive_int("scale", scale)
    protocol = Protocol.parse(protocol)
    psnr_options = protocol.metric_options("psnr", *_scale_args(protocol, "psnr", scale))
    ssim_options = protocol.metric_options("ssim", *_scale_args(protocol, "ssim", scale))
    if psnr_options == ssim_options:  # both metrics score the same image (standard): prepare it once
        _validate("ssim", sr, hr, ssim_options, data_range, min_size=SSIM_WINDOW)
        psnrs, ssims = [], []
        for sr_part, hr_part in _image_chunks(sr, hr):
            a, b = _prepare(sr_part, hr_part, ssim_options, data_range)
            psnrs.append(_psnr_prepared(a, b))
            ssims.append(_ssim_map_mean(a, b, boundary=ssim_options.boundary).mean(dim=1))
        return PairMetrics(torch.cat(psnrs), torch.cat(ssims))
    return PairMetrics(
        psnr(sr, hr, *_scale_args(protocol, "psnr", scale), data_range=data_range, protocol=protocol),
        ssim(sr, hr, *_scale_args(protocol, "ssim", scale), data_range=data_range, protocol=protocol),
    )


def _scale_args(protocol: Protocol, metric: Literal["psnr", "ssim"], scale: int) -> tuple[int | None, None]:
    """``(crop_border, y_channel)`` to pass for ``metric`` under ``protocol`` at ``scale``."""
    rule = protocol.spec.psnr if metric == "psnr" else protocol.spec.ssim
    return (scale if rule.crop_scale else None), None
