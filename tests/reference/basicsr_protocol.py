"""Independent per-image numpy float64 re-implementation of the BasicSR evaluation protocol.

Written from BasicSR's ``calculate_psnr`` / ``calculate_ssim`` description (and PAPER.md), sharing no code
with :mod:`gvcore.metrics`: images are ``(H, W, C)`` numpy arrays on the 8-bit scale ``[0, 255]``; Y is the
BT.601 luma ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``; SSIM filters the whole image with the 2-D
11x11 Gaussian window (``scipy.ndimage.correlate``, any border mode) and then crops ``[5:-5, 5:-5]`` exactly as
BasicSR does after ``cv2.filter2D`` -- i.e. the valid region. It is the reference for the tests and the
per-image baseline of ``bench/bench_metrics.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def to_y(img: np.ndarray, offset: float = 16.0) -> np.ndarray:
    """(H, W, 3) RGB in [0, 255] -> (H, W, 1) BT.601 luma in [16, 235] (or [0, 219] with offset 0)."""
    img = img.astype(np.float64) / 255.0
    y = img @ np.array([65.481, 128.553, 24.966]) + offset
    return y[..., None]


def _prepare(img, img2, crop_border: int, test_y_channel: bool, y_offset: float):
    img = np.asarray(img, dtype=np.float64)
    img2 = np.asarray(img2, dtype=np.float64)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        img, img2 = to_y(img, y_offset), to_y(img2, y_offset)
    return img, img2


def calculate_psnr(
    img, img2, crop_border: int = 0, test_y_channel: bool = False, y_offset: float = 16.0
) -> float:
    """PSNR of two (H, W, C) images on the 8-bit scale."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, y_offset)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def gaussian_window() -> np.ndarray:
    """11x11 window: outer product of the normalised 1-D Gaussian, sigma 1.5."""
    t = np.arange(11) - 5.0
    k = np.exp(-(t**2) / (2 * 1.5**2))
    k /= k.sum()
    return np.outer(k, k)


def _ssim_single(img: np.ndarray, img2: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    window = gaussian_window()

    def filt(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate(a, window, mode="reflect")[5:-5, 5:-5]

    mu1, mu2 = filt(img), filt(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = filt(img**2) - mu1_sq
    sigma2_sq = filt(img2**2) - mu2_sq
    sigma12 = filt(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def calculate_ssim(
    img, img2, crop_border: int = 0, test_y_channel: bool = False, y_offset: float = 16.0
) -> float:
    """SSIM of two (H, W, C) images on the 8-bit scale: mean over channels of per-channel SSIM."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, y_offset)
    return float(np.mean([_ssim_single(img[..., i], img2[..., i]) for i in range(img.shape[2])]))


def protocol_metrics(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: str) -> tuple[float, float]:
    """(PSNR, SSIM) of (H, W, 3) images in [0, 255] under "standard" (BasicSR) or "official" (GV code)."""
    if protocol == "standard":
        return (
            calculate_psnr(sr, hr, crop_border=scale, test_y_channel=True),
            calculate_ssim(sr, hr, crop_border=scale, test_y_channel=True),
        )
    if protocol == "official":  # the GV code's own formulas (same/symm filtering, /256 luma)
        from tests.reference.official_protocol import official_psnr, official_ssim

        a, b = sr.astype(np.float64) / 255.0, hr.astype(np.float64) / 255.0
        return official_psnr(a, b), official_ssim(a, b)
    raise ValueError(protocol)
