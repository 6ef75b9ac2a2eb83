"""Deterministic test images shared by the reference-value script and the tests (numpy PCG64, seeded)."""

from __future__ import annotations

import numpy as np


def image_pair(seed: int, height: int, width: int, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit (H, W, C) "HR" image with edges, gradients and texture, and a degraded 8-bit "SR" version.

    Returned as uint8 arrays; both lie on the 8-bit grid, as the standard protocol expects.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 0.5 + 0.35 * np.sin(xx / (3.0 + seed)) * np.cos(yy / 5.0)
    base = base + 0.3 * ((xx + 2 * yy) % 17 < 8)  # hard edges
    hr = np.stack(
        [base * (0.6 + 0.2 * c) + 0.05 * rng.standard_normal((height, width)) for c in range(channels)], -1
    )
    hr = np.clip(hr, 0.0, 1.0)
    sr = hr + 0.04 * rng.standard_normal(hr.shape) + 0.02 * np.roll(hr, 1, axis=1)
    sr = np.clip(sr, 0.0, 1.0)
    return np.round(sr * 255).astype(np.uint8), np.round(hr * 255).astype(np.uint8)


def float_image(seed: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    """A float64 (C, H, W) image in [0, 1] with edges and noise, for imresize references."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 0.5 + 0.4 * np.sin(xx / 2.3 + yy / 3.1) * ((xx + yy) % 5 < 3)
    img = np.stack([base * (0.5 + 0.25 * c) + 0.2 * rng.random((height, width)) for c in range(channels)])
    return np.clip(img, 0.0, 1.0)
