"""An independent re-derivation of the official GV evaluation (PAPER.md, "The official evaluation, line by line").

Written from the description with numpy, PIL and ``scipy.signal.convolve2d`` only -- none of gvcore's code path --
so the tests can check ``protocol="official"`` against it. Images are ``(H, W, 3)`` arrays.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import signal


def official_lr_and_input(hr_uint8: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``ValidationDataset``: PIL bilinear down to (W // s, H // s), then up by s; both uint8 ``(h, w, 3)``."""
    image = Image.fromarray(hr_uint8)
    small = image.resize((image.width // scale, image.height // scale), Image.BILINEAR)
    big = small.resize((small.width * scale, small.height * scale), Image.BILINEAR)
    return np.asarray(small), np.asarray(big)


def official_psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """``benchmark.py``: ``10 log10(1 / MSE)`` on RGB in [0, 1], no crop, no clamp."""
    mse = np.mean((prediction.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float(10 * np.log10(1 / mse))


def _matlab_gauss_2d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    m = (size - 1) / 2.0
    y, x = np.ogrid[-m : m + 1, -m : m + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def official_ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """``utils.calc_ssim(pred * 255, target * 255, scale=2, dataset=...)`` on RGB in [0, 1]."""
    coefficients = np.array([65.738, 129.057, 25.064]) / 256
    x = (prediction.astype(np.float64) * 255) @ coefficients
    y = (target.astype(np.float64) * 255) @ coefficients
    shave = 2
    x, y = x[shave:-shave, shave:-shave], y[shave:-shave, shave:-shave]
    window = _matlab_gauss_2d()

    def filt(a: np.ndarray) -> np.ndarray:
        return signal.convolve2d(a, window, mode="same", boundary="symm")

    ux, uy = filt(x), filt(y)
    vx, vy, vxy = filt(x * x) - ux * ux, filt(y * y) - uy * uy, filt(x * y) - ux * uy
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean())
