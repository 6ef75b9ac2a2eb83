"""Encoders for downloads: a 2-D map as NPY (exact float32), CSV (one row per entry) or PNG (8-bit preview)."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from PIL import Image

__all__ = ["encode_map"]


def encode_map(values: np.ndarray, name: str, fmt: str, log: bool = False) -> tuple[bytes, str, str]:
    """Encode a 2-D map for download; return ``(payload, file_name, mime)``.

    Args:
        values: ``(h, w)`` array.
        name: used for the file name.
        fmt: ``"NPY"`` (exact float32), ``"CSV"`` (``row, col, value``) or ``"PNG"`` (min-max scaled to 8-bit;
            of ``log10`` values when ``log``; a preview, not the data).
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
        shown = np.log10(np.maximum(array, 1e-6)) if log else array
        lo, hi = float(shown.min()), float(shown.max())
        scaled = np.zeros_like(shown) if hi <= lo else (shown - lo) / (hi - lo)
        buffer = io.BytesIO()
        Image.fromarray((scaled * 255).round().astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue(), f"{stem}.png", "image/png"
    raise ValueError(f"fmt must be one of 'NPY', 'CSV', 'PNG'; got {fmt!r}")
