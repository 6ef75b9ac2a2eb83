"""MATLAB-compatible bicubic ``imresize`` (antialiased), batched and vectorised.

The standard SR protocol (PAPER.md) synthesises LR images with MATLAB's ``imresize(img, 1/s, 'bicubic')``;
OpenCV and PIL bicubic differ and shift PSNR by tenths of a dB. This module re-derives MATLAB's algorithm:

* cubic kernel with ``a = -0.5`` (Keys), support ``[-2, 2]`` (kernel width 4);
* when downscaling with ``antialiasing=True`` the kernel is stretched by ``1/scale`` (``h(x) = s * k(s x)``,
  width ``4 / s``);
* output index ``x`` (1-based) maps to input coordinate ``u = x / s + 0.5 (1 - 1/s)``; the contributing
  input indices are ``floor(u - width/2) + 0 .. P-1`` with ``P = ceil(width) + 2``; weights are normalised to
  sum to 1; out-of-range indices are mirrored symmetrically (``1 2 3 ... n n ... 3 2 1``, edge repeated) --
  MATLAB's ``contributions`` function.

Instead of gathering rows per output pixel, the contributions of each axis are folded into a weight matrix
(mirror padding included), built once in float64 and cached, and the image is resized by two matrix products,
``Y = A_h @ X @ A_w^T``, computed as one small GEMM over
strided windows when the geometry is periodic (integer scales), densely otherwise. MATLAB resizes the dimension with the *smaller* scale factor first
(ties: height first); BasicSR's port always does height first. Here the order is picked for speed (height first
when the image shrinks, width first when it grows): the products are associative, so the order only changes
float rounding (~1e-7 in float32, ~1e-15 in float64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from gvcore._validation import check_floating_image

__all__ = ["cubic", "imresize", "resize_matrix"]

#: Support of the cubic kernel (MATLAB ``kernel_width`` for ``'bicubic'``).
KERNEL_WIDTH = 4.0


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys cubic convolution kernel with ``a = -0.5`` (MATLAB ``imresize``'s ``cubic``).

    Args:
        x: distances, any shape, floating point.

    Returns:
        Kernel values, same shape, dtype and device as ``x``; zero for ``|x| > 2``.

    Example:
        >>> cubic(torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])).tolist()
        [1.0, 0.5625, 0.0, -0.0625, 0.0]
    """
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1).to(x.dtype)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)).to(x.dtype)
    return near + far


def resize_matrix(
    in_length: int,
    out_length: int,
    scale: float,
    antialiasing: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Dense ``(out_length, in_length)`` float64 matrix of MATLAB's bicubic contributions along one axis.

    Row ``i`` holds the normalised weights of output sample ``i``; mirrored out-of-range taps are added onto
    the in-range index they reflect to, so ``matrix @ signal`` equals MATLAB's gather-and-sum.

    Args:
        in_length: input length along the axis (``>= 1``).
        out_length: output length (``>= 1``).
        scale: ``out / in`` scale factor used for the coordinate mapping (``> 0``).
        antialiasing: widen the kernel by ``1/scale`` when ``scale < 1``.
        device: where to build the matrix.

    Returns:
        ``(out_length, in_length)`` float64 tensor whose rows sum to 1.

    Example:
        >>> m = resize_matrix(4, 2, 0.5)
        >>> tuple(m.shape), [round(v, 6) for v in m.sum(dim=1).tolist()]
        ((2, 4), [1.0, 1.0])
    """
    indices, weights = _contributions(out_length, scale, antialiasing, device)
    k = _mirror(indices, in_length)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64, device=device)
    matrix.scatter_add_(1, k, weights)
    return matrix


def _contributions(
    out_length: int, scale: float, antialiasing: bool, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's ``contributions``: 0-based input indices (not yet mirrored) and normalised weights.

    Returns:
        ``(indices, weights)``, each ``(out_length, taps)``; ``indices`` int64, ``weights`` float64.
    """
    width = KERNEL_WIDTH
    stretch = 1.0
    if scale < 1 and antialiasing:
        stretch = scale
        width = KERNEL_WIDTH / scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64, device=device)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64, device=device)  # 1-based
    weights = stretch * cubic(stretch * (u.unsqueeze(1) - indices))
    weights = weights / weights.sum(dim=1, keepdim=True)
    return indices.long() - 1, weights


def _mirror(indices: torch.Tensor, length: int) -> torch.Tensor:
    """Fold 0-based indices into ``[0, length)`` by symmetric mirroring (``0 1 .. n-1 n-1 .. 1 0``)."""
    period = 2 * length
    k = torch.remainder(indices, period)
    return torch.where(k < length, k, period - 1 - k)


#: largest output side :func:`imresize` produces (a dense resize matrix is ``out x in``; larger is a mistake).
MAX_OUTPUT_SIDE = 65_536
#: largest output ``h * w`` :func:`imresize` produces per channel (1 GiB in float32).
MAX_OUTPUT_PIXELS = 1 << 28


def _output_size(
    in_hw: tuple[int, int], scale: float | None, size: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    out, scales = _requested_size(in_hw, scale, size)
    if max(out) > MAX_OUTPUT_SIDE or out[0] * out[1] > MAX_OUTPUT_PIXELS:
        asked = f"scale={scale!r}" if scale is not None else f"size={tuple(size or ())!r}"
        raise ValueError(
            f"imresize of a {in_hw[0]}x{in_hw[1]} image with {asked} would be {out[0]}x{out[1]} pixels, over the "
            f"limit of {MAX_OUTPUT_SIDE} per side and {MAX_OUTPUT_PIXELS:,} pixels: check the scale factor"
        )
    return out, scales


def _requested_size(
    in_hw: tuple[int, int], scale: float | None, size: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    if (scale is None) == (size is None):
        raise ValueError(f"pass exactly one of scale and size; got scale={scale!r}, size={size!r}")
    if size is not None:
        if (
            not isinstance(size, Sequence)
            or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size)
        ):
            raise ValueError(f"size must be two positive ints (h, w); got {size!r}")
        out = (int(size[0]), int(size[1]))
        return out, (out[0] / in_hw[0], out[1] / in_hw[1])
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a positive number; got {type(scale).__name__} {scale!r}")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    out = (math.ceil(in_hw[0] * scale), math.ceil(in_hw[1] * scale))
    return out, (float(scale), float(scale))


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    antialiasing: bool = True,
    size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased), for a batch of images.

    The output size is ``ceil(H * scale) x ceil(W * scale)`` (MATLAB, BasicSR), or ``size`` when given, in
    which case each axis uses its own scale ``out / in`` as MATLAB does. Values are *not* clamped: bicubic
    over- and undershoots near edges (clamp and quantise yourself, e.g. ``gvcore.protocol.quantize_8bit``).

    Precision: the weight matrices are built in float64 and cast to the computation dtype, which is the
    input's dtype for float32/float64 and float32 for float16/bfloat16 (the result is cast back). In float32
    the result matches a float64 MATLAB-style reference to ~1e-7 on [0, 1] images.

    Args:
        x: ``(B, C, H, W)`` floating tensor, any range; device and dtype are preserved.
        scale: scale factor ``> 0`` (``0.25`` downscales by 4, ``2`` upscales by 2). Exclusive with ``size``.
        antialiasing: stretch the kernel by ``1/scale`` when downscaling (MATLAB default ``true``).
        size: output ``(h, w)``. Exclusive with ``scale``.

    Returns:
        ``(B, C, h, w)`` tensor, same dtype and device as ``x``.

    Shape:
        - Input: ``(B, C, H, W)``
        - Output: ``(B, C, ceil(H * scale), ceil(W * scale))`` or ``(B, C, *size)``

    Example:
        >>> x = torch.rand(2, 3, 10, 7)
        >>> tuple(imresize(x, 1 / 3).shape), tuple(imresize(x, 2).shape)
        ((2, 3, 4, 3), (2, 3, 20, 14))
        >>> torch.allclose(imresize(torch.full((1, 1, 8, 8), 0.5), 0.5), torch.full((1, 1, 4, 4), 0.5))
        True
    """
    check_floating_image("x", x)
    if not isinstance(antialiasing, bool):
        raise TypeError(f"antialiasing must be a bool; got {type(antialiasing).__name__} {antialiasing!r}")
    in_h, in_w = int(x.shape[-2]), int(x.shape[-1])
    (out_h, out_w), (scale_h, scale_w) = _output_size((in_h, in_w), scale, size)

    compute_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    y = x.to(compute_dtype).reshape(-1, in_h, in_w)
    along_h = _AxisResizer.get(in_h, out_h, scale_h, antialiasing)
    along_w = _AxisResizer.get(in_w, out_w, scale_w, antialiasing)
    # Images are resized a few at a time so every temporary stays small and cache-resident: large fresh
    # temporaries cost more in page faults than the arithmetic. Only the output is allocated at full size.
    out = torch.empty(y.shape[0], out_h, out_w, dtype=compute_dtype, device=x.device)
    largest = max(in_h * in_w, out_h * out_w, out_h * in_w, in_h * out_w) * y.element_size()
    per_chunk = max(1, _CHUNK_BYTES // largest)
    for start in range(0, y.shape[0], per_chunk):
        chunk = y[start : start + per_chunk]
        # Both passes gather whole rows (the fast direction); the W pass runs on a transposed copy. Upscaling
        # resizes W first so the transposed copies are of the smaller images. The order only changes rounding.
        if out_h * out_w <= in_h * in_w:
            chunk = along_h.resize_rows(chunk)
            chunk = along_w.resize_rows(chunk.transpose(1, 2).contiguous()).transpose(1, 2)
        else:
            chunk = along_w.resize_rows(chunk.transpose(1, 2).contiguous())
            chunk = along_h.resize_rows(chunk.transpose(1, 2).contiguous())
        out[start : start + per_chunk] = chunk
    return out.reshape(*x.shape[:-2], out_h, out_w).to(x.dtype)


#: Working-set budget per chunk of images in :func:`imresize` (about an L2 cache).
_CHUNK_BYTES = 1 << 20


class _AxisResizer:
    """One axis of ``imresize``: the same weights and sums as ``resize_matrix(...) @ signal``, computed fast.

    * **Periodic geometry** (integer up- or down-scaling, the SR case): the contributions repeat -- every
      ``period`` outputs use the same weights, shifted by ``shift`` inputs. The input is mirror-padded once
      (an index gather), cut into overlapping windows by a strided view, and all windows are multiplied by
      one small ``(outputs_per_group, window)`` weight matrix: a single GEMM.
    * **Otherwise** (``size=`` with arbitrary ratios): the dense ``(out, in)`` matrix product.

    Instances are built once per geometry in float64 on the CPU and cached.
    """

    GROUP = 16  # outputs per weight group in the periodic path (a GEMM-friendly size)
    _cache: ClassVar[dict[tuple[int, int, float, bool], _AxisResizer]] = {}

    def __init__(self, in_length: int, out_length: int, scale: float, antialiasing: bool) -> None:
        self.out_length = out_length
        indices, weights = _contributions(out_length, scale, antialiasing)
        period_shift = self._find_period(indices, weights)
        self.dense: torch.Tensor | None = None
        if period_shift is None:
            self.dense = resize_matrix(in_length, out_length, scale, antialiasing)
            return
        period, shift = period_shift
        repeats = max(1, self.GROUP // period)
        group, self.step = period * repeats, shift * repeats
        group = min(group, out_length)
        offsets = indices[:group] - indices[0, 0]
        self.window = int(offsets.max()) + 1
        matrix = torch.zeros(group, self.window, dtype=torch.float64)
        matrix.scatter_add_(1, offsets, weights[:group])
        self.matrix = matrix
        groups = -(-out_length // group)
        positions = indices[0, 0] + torch.arange((groups - 1) * self.step + self.window)
        self.positions = _mirror(positions, in_length)

    @staticmethod
    def _find_period(
        indices: torch.Tensor, weights: torch.Tensor, max_period: int = 8
    ) -> tuple[int, int] | None:
        """Smallest ``p`` with ``weights[o + p] == weights[o]`` and a constant index shift, if any."""
        n = indices.shape[0]
        for p in range(1, min(max_period, n - 1) + 1):
            shift = indices[p:, 0] - indices[:-p, 0]
            if (
                bool((shift == shift[0]).all())
                and bool((indices[p:] - indices[:-p] == shift[0]).all())
                and torch.allclose(weights[p:], weights[:-p], rtol=0.0, atol=1e-13)
            ):
                return p, int(shift[0])
        return None

    @classmethod
    def get(cls, in_length: int, out_length: int, scale: float, antialiasing: bool) -> _AxisResizer:
        key = (in_length, out_length, float(scale), antialiasing)
        resizer = cls._cache.get(key)
        if resizer is None:
            if len(cls._cache) > 256:
                cls._cache.clear()
            resizer = cls._cache[key] = cls(in_length, out_length, scale, antialiasing)
        return resizer

    def resize_rows(self, y: torch.Tensor) -> torch.Tensor:
        """Resize ``(N, L, M)`` along ``L`` (whole rows of ``M`` values are gathered and combined)."""
        if self.dense is not None:
            return torch.matmul(self.dense.to(y.device, y.dtype), y)
        padded = y.index_select(1, self.positions.to(y.device))
        windows = padded.unfold(1, self.window, self.step)  # (N, groups, M, window)
        out = torch.matmul(self.matrix.to(y.device, y.dtype), windows.transpose(-1, -2))
        return out.reshape(y.shape[0], -1, y.shape[2])[:, : self.out_length]
