"""Encoders for downloads: a 2-D map as NPY (exact float32), CSV (one row per entry) or PNG (8-bit preview)."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from PIL import Image

__all__ = ["MIN_PICTURE_SIDE", "encode_map", "map_picture"]


def encode_map(values: np.ndarray, name: str, fmt: str, log: bool = False) -> tuple[bytes, str, str]:
    """Encode a 2-D map for download; return ``(payload, file_name, mime)``.

    Args:
        values: ``(h, w)`` array.
        name: used for the file name.
        fmt: ``"NPY"`` (exact float32), ``"CSV"`` (``row, col, value``) or ``"PNG"`` (a picture, not the data:
            :func:`map_picture`, coloured, enlarged, with its scale).
        log: scale the PNG preview logarithmically.
    """
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "map"
    array = np.asarray(values, dtype=np.float32)
    if fmt == "NPY":
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue(), f"{stem}.npy", "application/octet-stream"
    if fmt == "CSV":
        rows, cols = np.indices(array.shape)
        frame = pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": array.ravel()})
        return frame.to_csv(index=False).encode(), f"{stem}.csv", "text/csv"
    if fmt == "PNG":
        buffer = io.BytesIO()
        map_picture(array, name, log).save(buffer, format="PNG")
        return buffer.getvalue(), f"{stem}.png", "image/png"
    raise ValueError(f"fmt must be one of 'NPY', 'CSV', 'PNG'; got {fmt!r}")


#: a map picture's longer side is enlarged (by whole pixels per entry) to at least this many pixels
MIN_PICTURE_SIDE = 512
# viridis at 9 evenly spaced stops (matplotlib's, rounded to 8 bits), interpolated linearly between them
_VIRIDIS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)


def map_picture(values: np.ndarray, title: str, log: bool = False) -> Image.Image:
    """A 2-D map as a picture a reader can use: viridis colours, enlarged, with a titled colour bar.

    Each entry becomes a square of whole pixels (nearest neighbour, so one patch stays one block) until the longer
    side reaches :data:`MIN_PICTURE_SIDE`; below it, a colour bar labelled with the values at its ends
    (``log10`` of them when ``log``) and ``title``.

    Example:
        >>> picture = map_picture(np.arange(6, dtype=np.float32).reshape(2, 3), "v")
        >>> picture.mode, picture.width >= 512, picture.height > 2 * 512 // 3
        ('RGB', True, True)
    """
    from PIL import ImageDraw

    array = np.asarray(values, dtype=np.float64)
    shown = np.log10(np.maximum(array, 1e-12)) if log else array
    finite = shown[np.isfinite(shown)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = np.zeros_like(shown) if hi <= lo else np.clip((shown - lo) / (hi - lo), 0.0, 1.0)
    scaled = np.nan_to_num(scaled)
    rgb = _colours(scaled)
    factor = max(1, -(-MIN_PICTURE_SIDE // max(rgb.shape[:2])))
    big = rgb.repeat(factor, axis=0).repeat(factor, axis=1)
    height, width = big.shape[:2]
    bar = 46
    canvas = Image.new("RGB", (width, height + bar), "white")
    canvas.paste(Image.fromarray(big), (0, 0))
    ramp = _colours(np.linspace(0.0, 1.0, width)[None, :]).repeat(12, axis=0)
    canvas.paste(Image.fromarray(ramp), (0, height + 6))
    draw = ImageDraw.Draw(canvas)
    unit = "log10 " if log else ""
    draw.text((2, height + 20), f"{unit}{lo:.4g}", fill="black")
    right = f"{unit}{hi:.4g}"
    draw.text((max(2, width - 6 * len(right) - 2), height + 20), right, fill="black")
    draw.text((max(2, width // 2 - 3 * len(title)), height + 32), title, fill="black")
    return canvas


def _colours(scaled: np.ndarray) -> np.ndarray:
    """``(h, w)`` values in [0, 1] as ``(h, w, 3)`` uint8 viridis colours."""
    position = scaled * (len(_VIRIDIS) - 1)
    index = np.clip(np.floor(position).astype(int), 0, len(_VIRIDIS) - 2)
    weight = (position - index)[..., None]
    colours: np.ndarray = _VIRIDIS[index] * (1 - weight) + _VIRIDIS[index + 1] * weight
    return np.asarray(np.round(colours), dtype=np.uint8)
