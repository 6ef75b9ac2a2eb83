"""Full-reference quality metrics the GV loss does not optimise: GMSD and MS-SSIM.

The GV loss matches local gradient variances, and PSNR / SSIM (:mod:`gvcore.metrics`) are what SR papers
report. These two metrics score the same pairs from other angles, so a gain that only exists in what the loss
optimises shows up as a disagreement:

* :func:`gmsd` -- Gradient Magnitude Similarity Deviation (Xue, Zhang, Mou, Bovik, IEEE TIP 2014): the spread
  of a per-pixel gradient-magnitude similarity. **Lower is better**, 0 for identical images.
* :func:`ms_ssim` -- Multi-scale SSIM (Wang, Simoncelli, Bovik, Asilomar 2003): SSIM's contrast-structure
  term at five scales. **Higher is better**, 1 for identical images.

Both take ``(B, C, H, W)`` floating tensors with ``C`` = 1 or 3 and ``data_range`` the value of white, score
the luma ``0.299 R + 0.587 G + 0.114 B`` of RGB input (a 1-channel input is used as is), compute in float64
on the input's device (inputs may be float32) and return one float64 value per image, shape ``(B,)``.
**Values are not clamped**: inputs outside ``[0, data_range]`` are scored as given (clamp or
:func:`gvcore.protocol.quantize_8bit` network outputs first if the protocol asks for it).

Where the authors' MATLAB code and piq (the independent implementation the tests compare with) differ, these
functions follow the authors; each difference is stated in the function's docstring.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from gvcore._validation import check_floating_image, check_same_shape
from gvcore.metrics import gaussian_window_1d

__all__ = [
    "GMSD_T",
    "HIGHER_IS_BETTER",
    "LUMA_WEIGHTS",
    "MS_SSIM_MIN_SIZE",
    "MS_SSIM_WEIGHTS",
    "gmsd",
    "ms_ssim",
]

#: Direction of each metric (torchmetrics' ``higher_is_better``).
HIGHER_IS_BETTER: dict[str, bool] = {"gmsd": False, "ms_ssim": True}
#: R, G, B weights of the luma both metrics score (BT.601 without offset; piq's ``rgb2yiq`` Y row).
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
#: GMSD's stability constant ``T`` on the 0..255 scale (Xue et al. 2014; ``T = 170`` in the authors' code).
GMSD_T = 170.0
#: MS-SSIM scale weights, finest first (Wang et al. 2003, Table 1 / ``msssim.m``).
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WINDOW = 11
MS_SSIM_SIGMA = 1.5
MS_SSIM_K1 = 0.01
MS_SSIM_K2 = 0.03
#: Smallest ``H`` and ``W`` for five scales: pooling halves a side rounding up (``ceil``), so the coarsest
#: scale is ``ceil(H / 16)`` wide and the valid 11x11 window needs ``ceil(H / 16) >= 11``, that is
#: ``H >= 10 * 16 + 1 = 161`` (not ``11 * 16 = 176``, which flooring would need).
MS_SSIM_MIN_SIZE = (MS_SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1


def _validate(name: str, x: torch.Tensor, y: torch.Tensor, data_range: float, min_size: int) -> None:
    """Check a metric's inputs (the one place these errors are raised)."""
    check_floating_image("x", x, channels=(1, 3))
    check_floating_image("y", y, channels=(1, 3))
    check_same_shape("x", x, "y", y)
    if x.device != y.device:
        raise ValueError(f"x and y must be on the same device; got {x.device} and {y.device}")
    if x.shape[0] == 0:
        raise ValueError(f"x and y must hold at least one image; got shape {tuple(x.shape)}")
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, (int, float))
        or not (data_range > 0 and math.isfinite(data_range))
    ):
        raise ValueError(f"data_range must be a finite number > 0; got {data_range!r}")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(
            f"{name} needs images of at least {min_size}x{min_size} pixels "
            f"(5 scales of a valid {MS_SSIM_WINDOW}x{MS_SSIM_WINDOW} window); got {h}x{w}"
        )


def _luma64(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` float64 luma of an RGB input with :data:`LUMA_WEIGHTS`; a gray input as float64."""
    x = x.to(torch.float64)
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64, device=x.device)
    return torch.einsum("bchw,c->bhw", x, weights).unsqueeze(1)


def _pool_2x2(x: torch.Tensor, odd: Literal["zeros", "replicate"]) -> torch.Tensor:
    """2x2 mean with stride 2; an odd side is first padded by one row / column at the bottom / right.

    The pad is zeros (GMSD: MATLAB ``conv2(..., 'same')``) or the edge repeated (MS-SSIM: MATLAB
    ``imfilter(..., 'symmetric')``), so a side ``n`` becomes ``ceil(n / 2)``.
    """
    pad = (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)
    if any(pad):
        x = F.pad(x, pad) if odd == "zeros" else F.pad(x, pad, mode="replicate")
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def gmsd(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation per image (Xue et al., IEEE TIP 2014). Lower is better.

    The authors' MATLAB ``GMSD.m``, step by step, on the luma (module docstring):

    1. 2x2 mean with stride 2; an odd side is padded with one row / column of zeros at the bottom / right
       first (``conv2(Y, ones(2)/4, 'same')`` then every second pixel), so a side ``n`` becomes ``ceil(n/2)``.
    2. Prewitt gradients with ``[[1, 0, -1]] * 3 / 3`` and its transpose, zero-padded ``'same'`` filtering;
       magnitude ``m = sqrt(gx^2 + gy^2)``.
    3. ``GMS = (2 m1 m2 + c) / (m1^2 + m2^2 + c)`` with ``c = 170 / 255^2 * data_range^2`` (the paper's
       ``T = 170`` on the 0..255 scale).
    4. GMSD = the population standard deviation of the GMS map (the paper's Eq. 8, ``1 / N``).

    Differences from other implementations: the authors' code ends with MATLAB's ``std2``, the *sample*
    standard deviation (``1 / (N - 1)``), larger by ``sqrt(N / (N - 1))`` (``1 + 3e-5`` for a 256x256 image);
    this follows the paper's formula, as piq does. piq pads an odd image by ``max(H % 2, W % 2)`` on both
    sides; the extra zero row or column of an even side is dropped by its pooling, so the result is the same.

    Args:
        x: ``(B, C, H, W)`` floating tensor (the distorted image), ``C`` = 1 or 3, nominally in
            ``[0, data_range]``; values outside are scored as given (not clamped).
        y: reference, same shape and device (any floating dtype).
        data_range: value of white in the inputs (1.0 for ``[0, 1]``, 255.0 for ``[0, 255]``).

    Returns:
        ``(B,)`` float64 tensor on ``x``'s device, ``>= 0``; 0 for identical images.

    Shape:
        - Input: ``(B, C, H, W)``, any ``H, W >= 1``
        - Output: ``(B,)``

    Example:
        >>> gen = torch.Generator().manual_seed(0)
        >>> y = torch.rand(2, 3, 32, 32, generator=gen)
        >>> gmsd(y, y).tolist()
        [0.0, 0.0]
        >>> bool((gmsd(y.flip(-1), y) > 0).all())
        True
    """
    _validate("gmsd", x, y, data_range, min_size=1)
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64, device=x.device) / 3.0
    kernels = torch.stack([prewitt, prewitt.T]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    magnitudes = []
    for image in (x, y):
        pooled = _pool_2x2(_luma64(image), odd="zeros")
        gradients = F.conv2d(pooled, kernels, padding=1)
        magnitudes.append(gradients.square().sum(dim=1).sqrt())
    m1, m2 = magnitudes
    c = GMSD_T / 255.0**2 * float(data_range) ** 2
    gms = (2.0 * m1 * m2 + c) / (m1.square() + m2.square() + c)
    return gms.flatten(1).std(dim=1, correction=0)


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filter of ``(N, 1, H, W)`` with the 1-D ``window`` along both axes."""
    k = window.numel()
    return F.conv2d(F.conv2d(x, window.view(1, 1, k, 1)), window.view(1, 1, 1, k))


def _ssim_and_cs(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM map and mean contrast-structure map per image, each ``(B,)``; inputs in ``[0, 1]`` units."""
    n = a.shape[0]
    stats = _filter_valid(torch.cat([a, b, a * a, b * b, a * b]), window)
    mu1, mu2, e11, e22, e12 = stats.split(n)
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    c1, c2 = MS_SSIM_K1**2, MS_SSIM_K2**2
    cs = (2.0 * (e12 - mu12) + c2) / ((e11 - mu11) + (e22 - mu22) + c2)
    luminance = (2.0 * mu12 + c1) / (mu11 + mu22 + c1)
    return (luminance * cs).flatten(1).mean(dim=1), cs.flatten(1).mean(dim=1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang, Simoncelli, Bovik 2003). Higher is better.

    The authors' MATLAB ``msssim.m`` on the luma (module docstring), scaled to ``[0, 1]`` units:

    * five scales; between them a 2x2 mean with stride 2, an odd side first padded by repeating its last row /
      column (``imfilter(..., ones(2)/4, 'symmetric')`` then every second pixel), so a side ``n`` becomes
      ``ceil(n / 2)``;
    * at each scale the SSIM statistics of an 11x11 Gaussian window (sigma 1.5), *valid* region only (no
      padding), ``C1 = 0.01^2``, ``C2 = 0.03^2``; the mean contrast-structure term ``cs`` at scales 1-4 and
      the mean SSIM at scale 5;
    * ``MS-SSIM = prod_i max(v_i, 0) ** w_i`` with ``w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``. The
      ``max(., 0)`` (piq's ``relu``) keeps the score real where MATLAB would return a complex number for a
      negative term (anti-correlated images): such a pair scores 0, never NaN.

    Images need at least :data:`MS_SSIM_MIN_SIZE` = 161 pixels per side: the fifth scale is
    ``ceil(H / 16)`` wide and the valid window needs 11 (``10 * 2**4 + 1 = 161``, not ``11 * 16 = 176``).

    Differences from piq's ``multi_scale_ssim``: piq scores each RGB channel and averages (here: the luma);
    it pads an odd side at the *top / left* (by ``max(H % 2, W % 2)`` on both axes) where the authors pad at
    the bottom / right. For square images the two are mirror images of each other, which the tests use.

    Args:
        x: ``(B, C, H, W)`` floating tensor (the distorted image), ``C`` = 1 or 3, nominally in
            ``[0, data_range]``; values outside are scored as given (not clamped).
        y: reference, same shape, same device.
        data_range: value of white in the inputs (1.0 for ``[0, 1]``, 255.0 for ``[0, 255]``).

    Returns:
        ``(B,)`` float64 tensor on ``x``'s device in ``[0, 1]``; 1 for identical images.

    Raises:
        ValueError: a side is shorter than :data:`MS_SSIM_MIN_SIZE` (the message names both sizes).

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W >= 161``
        - Output: ``(B,)``

    Example:
        >>> gen = torch.Generator().manual_seed(0)
        >>> y = torch.rand(1, 1, 161, 170, generator=gen)
        >>> ms_ssim(y, y).tolist()
        [1.0]
        >>> bool(ms_ssim(1 - y, y) == 0)  # anti-correlated: a negative term, clipped to 0
        True
    """
    _validate("ms_ssim", x, y, data_range, min_size=MS_SSIM_MIN_SIZE)
    scale = 1.0 / float(data_range)
    a, b = _luma64(x) * scale, _luma64(y) * scale
    window = gaussian_window_1d(MS_SSIM_WINDOW, MS_SSIM_SIGMA).to(device=a.device)
    terms = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        if level:
            a, b = _pool_2x2(a, odd="replicate"), _pool_2x2(b, odd="replicate")
        ssim_mean, cs_mean = _ssim_and_cs(a, b, window)
        terms.append(ssim_mean if level == len(MS_SSIM_WEIGHTS) - 1 else cs_mean)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=a.device)
    return torch.stack(terms, dim=1).clamp_min(0.0).pow(weights).prod(dim=1)


gmsd.higher_is_better = False  # type: ignore[attr-defined]
ms_ssim.higher_is_better = True  # type: ignore[attr-defined]
