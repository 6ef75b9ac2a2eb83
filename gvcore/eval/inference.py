"""Inference on images of any size: :func:`tiled_forward` runs a model tile by tile with bounded memory.

Tiles of the same input shape can be stacked into one forward call (``batch``), which keeps a GPU busy; each
tile is still an independent sample of the batch, so the output is that of running them one by one (to the
last bit in float64; to float rounding in float32, see :func:`tiled_forward`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn

from gvcore._validation import check_positive_int

__all__ = ["CUDA_TILE_BATCH", "DEVICE_CHOICES", "default_tile_batch", "resolve_device", "tiled_forward"]

#: device requests :func:`resolve_device` accepts.
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: tiles per forward call on a CUDA device when the caller does not say (:func:`default_tile_batch`).
CUDA_TILE_BATCH = 8


class _Tile(NamedTuple):
    """One tile: its core ``[y0:y1, x0:x1]`` and the input window ``[iy0:iy1, ix0:ix1]`` around it (LR pixels)."""

    y0: int
    y1: int
    x0: int
    x1: int
    iy0: int
    iy1: int
    ix0: int
    ix1: int


def _tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[_Tile]:
    """Tiles covering an ``h x w`` image in row-major order, each with ``overlap`` context clipped at borders."""
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            yield _Tile(
                y0,
                y1,
                x0,
                x1,
                max(0, y0 - overlap),
                min(h, y1 + overlap),
                max(0, x0 - overlap),
                min(w, x1 + overlap),
            )


def resolve_device(request: str, source: str = "device") -> str:
    """The device to run models on: ``"auto"`` = CUDA when available, else CPU; ``"cpu"``; ``"cuda"``.

    Args:
        request: ``"auto"``, ``"cpu"`` or ``"cuda"`` (case and surrounding spaces ignored).
        source: what the request came from (``"--device"``, ``"GVLAB_DEVICE"``), named in errors.

    Returns:
        ``"cuda"`` or ``"cpu"``.

    Raises:
        ValueError: an unknown request (the valid ones are listed), or ``"cuda"`` without a usable GPU.

    Example:
        >>> resolve_device("cpu")
        'cpu'
        >>> resolve_device("tpu", "GVLAB_DEVICE")
        Traceback (most recent call last):
        ...
        ValueError: GVLAB_DEVICE must be one of auto, cpu, cuda; got 'tpu'
    """
    kind = str(request).strip().lower()
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"{source} must be one of {', '.join(DEVICE_CHOICES)}; got {request!r}")
    cuda = torch.cuda.is_available()
    if kind == "cuda" and not cuda:
        raise ValueError(f"{source}=cuda was asked for but no CUDA GPU is available (use auto or cpu)")
    return "cuda" if kind == "cuda" or (kind == "auto" and cuda) else "cpu"


def default_tile_batch(device: torch.device | str) -> int:
    """Tiles per forward call when none is given: 1 on CPU (no gain, more memory), :data:`CUDA_TILE_BATCH` on CUDA.

    Example:
        >>> default_tile_batch("cpu"), default_tile_batch("cuda:0")
        (1, 8)
    """
    return CUDA_TILE_BATCH if torch.device(device).type == "cuda" else 1


def tiled_forward(
    model: nn.Module, lr: torch.Tensor, scale: int, tile: int = 256, overlap: int = 16, batch: int = 1
) -> torch.Tensor:
    """Run ``model`` on ``lr`` tile by tile, so memory is bounded by the tile size (times ``batch``).

    The LR image is cut into ``tile x tile`` cores; each is run with ``overlap`` LR pixels of real context on
    every side (clipped at the image border) and only its core is kept. For a fully convolutional model
    whose receptive-field radius is at most ``overlap`` LR pixels the result equals whole-image inference up
    to float rounding; an image no larger than one tile is run whole.

    Tiles whose input windows have the same shape (all interior tiles; border tiles by row/column) are stacked
    along the batch dimension, up to ``batch`` tiles per forward call; each tile stays an independent sample.
    In float64 (PyTorch's native convolution at every batch size) the result is bit-identical to ``batch=1``
    (tested). In float32 PyTorch's CPU backend runs small batch-1 inputs on its native kernel but batches on
    oneDNN, and cuDNN picks its algorithm per batch size, so the last bits may differ (under 1e-5, tested).

    Args:
        model: maps ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``; must treat batch samples independently
            (true of every model in :data:`gvcore.models.MODELS`; not of a model with batch-statistics norm
            layers in train mode).
        lr: ``(B, C, h, w)`` input.
        scale: the model's scale.
        tile: core side in LR pixels.
        overlap: context in LR pixels on each side of a core.
        batch: most tiles per forward call (1 = one by one).

    Returns:
        ``(B, C, scale*h, scale*w)`` output, in the model's output dtype, on its device.

    Example:
        >>> up = nn.Upsample(scale_factor=2, mode="nearest")
        >>> x = torch.rand(1, 3, 40, 24)
        >>> torch.equal(tiled_forward(up, x, 2, tile=16, overlap=4, batch=3), up(x))
        True
    """
    check_positive_int("tile", tile)
    check_positive_int("overlap", overlap, minimum=0)
    check_positive_int("batch", batch)
    h, w = lr.shape[-2], lr.shape[-1]
    if h <= tile and w <= tile:
        return model(lr)
    groups: dict[tuple[int, int], list[_Tile]] = {}
    for box in _tiles(h, w, tile, overlap):
        groups.setdefault((box.iy1 - box.iy0, box.ix1 - box.ix0), []).append(box)
    samples = lr.shape[0]
    out: torch.Tensor | None = None
    for boxes in groups.values():
        for start in range(0, len(boxes), batch):
            chunk = boxes[start : start + batch]
            pieces = model(torch.cat([lr[..., b.iy0 : b.iy1, b.ix0 : b.ix1] for b in chunk], dim=0))
            if out is None:
                out = pieces.new_empty((samples, pieces.shape[1], h * scale, w * scale))
            for k, b in enumerate(chunk):
                oy, ox = (b.y0 - b.iy0) * scale, (b.x0 - b.ix0) * scale
                piece = pieces[k * samples : (k + 1) * samples]
                out[..., b.y0 * scale : b.y1 * scale, b.x0 * scale : b.x1 * scale] = piece[
                    ..., oy : oy + (b.y1 - b.y0) * scale, ox : ox + (b.x1 - b.x0) * scale
                ]
    if out is None:  # pragma: no cover - h, w >= 1
        raise ValueError("empty input")
    return out
