"""Independent per-row loop re-derivation of MATLAB ``imresize(..., 'bicubic')`` in numpy float64.

Written from MATLAB's algorithm description (``contributions`` + ``resizeAlongDim``), deliberately sharing no
code with :mod:`gvcore.resize`: contributions are computed with explicit Python loops per output index, the
mirror is an explicit reflection loop, and the resize gathers input rows one output row at a time. It is the
reference for the tests and the "per-row loop" baseline of ``bench/bench_imresize.py``.
"""

from __future__ import annotations

import math

import numpy as np


def cubic_scalar(t: float) -> float:
    """Keys cubic kernel, a = -0.5."""
    a = abs(t)
    if a <= 1.0:
        return 1.5 * a**3 - 2.5 * a**2 + 1.0
    if a <= 2.0:
        return -0.5 * a**3 + 2.5 * a**2 - 4.0 * a + 2.0
    return 0.0


def mirror_index(j: int, n: int) -> int:
    """Map a 1-based index to [1, n] by symmetric reflection with the edge repeated (MATLAB's ``aux``)."""
    while j < 1 or j > n:
        j = 1 - j if j < 1 else 2 * n + 1 - j
    return j


def contributions(in_length: int, out_length: int, scale: float, antialiasing: bool = True):
    """Per output index: list of (0-based input index, weight), zero weights dropped."""
    width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        width = 4.0 / scale
    taps = math.ceil(width) + 2
    result = []
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1.0 - 1.0 / scale)
        left = math.floor(u - width / 2.0)
        pairs = []
        for p in range(taps):
            j = left + p
            w = scale * cubic_scalar(scale * (u - j)) if shrink else cubic_scalar(u - j)
            pairs.append((j, w))
        total = sum(w for _, w in pairs)
        result.append([(mirror_index(j, in_length) - 1, w / total) for j, w in pairs if w != 0.0])
    return result


def resize_axis0(img: np.ndarray, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize along axis 0 of an (H, W, ...) float64 array, one output row at a time."""
    contrib = contributions(img.shape[0], out_length, scale, antialiasing)
    out = np.zeros((out_length, *img.shape[1:]), dtype=np.float64)
    for i, pairs in enumerate(contrib):
        row = np.zeros(img.shape[1:], dtype=np.float64)
        for j, w in pairs:
            row += w * img[j]
        out[i] = row
    return out


def imresize_reference(
    img: np.ndarray,
    scale: float | None = None,
    antialiasing: bool = True,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB bicubic imresize of an (H, W) or (H, W, C) array, float64.

    Output size ``ceil(H*scale) x ceil(W*scale)`` or ``size``; the axis with the smaller scale factor is resized
    first (ties: height first), as MATLAB does.
    """
    img = np.asarray(img, dtype=np.float64)
    in_h, in_w = img.shape[:2]
    if size is not None:
        out_h, out_w = size
        s_h, s_w = out_h / in_h, out_w / in_w
    else:
        assert scale is not None
        out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
        s_h = s_w = scale

    def along_h(a: np.ndarray) -> np.ndarray:
        return resize_axis0(a, out_h, s_h, antialiasing)

    def along_w(a: np.ndarray) -> np.ndarray:
        return np.swapaxes(resize_axis0(np.swapaxes(a, 0, 1), out_w, s_w, antialiasing), 0, 1)

    if s_h <= s_w:
        return along_w(along_h(img))
    return along_h(along_w(img))


def imresize_batch_reference(x: np.ndarray, scale: float | None = None, antialiasing: bool = True, size=None):
    """Apply :func:`imresize_reference` to each image of a (B, C, H, W) array (channels-last inside)."""
    out = [imresize_reference(np.moveaxis(im, 0, -1), scale, antialiasing, size) for im in x]
    return np.stack([np.moveaxis(o, -1, 0) for o in out])
