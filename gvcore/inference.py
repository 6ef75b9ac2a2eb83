"""Inference on images of any size: :func:`tiled_forward` runs a model tile by tile with bounded memory."""

from __future__ import annotations

import torch
from torch import nn

from gvcore._validation import check_positive_int

__all__ = ["tiled_forward"]


def tiled_forward(
    model: nn.Module, lr: torch.Tensor, scale: int, tile: int = 256, overlap: int = 16
) -> torch.Tensor:
    """Run ``model`` on ``lr`` tile by tile, so memory is bounded by the tile size.

    The LR image is cut into ``tile x tile`` cores; each is run with ``overlap`` LR pixels of real context on
    every side (clipped at the image border) and only its core is kept. For a fully convolutional model
    whose receptive-field radius is at most ``overlap`` LR pixels the result equals whole-image inference up
    to float rounding; an image no larger than one tile is run whole.

    Args:
        model: maps ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``.
        lr: ``(B, C, h, w)`` input.
        scale: the model's scale.
        tile: core side in LR pixels.
        overlap: context in LR pixels on each side of a core.

    Returns:
        ``(B, C, scale*h, scale*w)`` output.
    """
    check_positive_int("tile", tile)
    check_positive_int("overlap", overlap, minimum=0)
    h, w = lr.shape[-2], lr.shape[-1]
    if h <= tile and w <= tile:
        return model(lr)
    out: torch.Tensor | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            iy0, ix0 = max(0, y0 - overlap), max(0, x0 - overlap)
            iy1, ix1 = min(h, y1 + overlap), min(w, x1 + overlap)
            piece = model(lr[..., iy0:iy1, ix0:ix1])
            if out is None:
                out = piece.new_empty((*piece.shape[:2], h * scale, w * scale))
            oy, ox = (y0 - iy0) * scale, (x0 - ix0) * scale
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = piece[
                ..., oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    if out is None:  # pragma: no cover - h, w >= 1
        raise ValueError("empty input")
    return out
