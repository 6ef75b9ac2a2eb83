"""Image files <-> ``(1, 3, H, W)`` float tensors in ``[0, 1]``, with clear errors for bad files.

Reading (:func:`load_image`): PNG, JPEG, BMP, TIFF and WebP; 8- and 16-bit samples; gray (replicated to
three channels), gray+alpha, RGB, RGBA, palette and CMYK. **Alpha is dropped** (not composited): SR is
scored on colour only. The EXIF orientation tag is applied. Animated files give their first frame.

Decoders: Pillow for everything except two cases it would silently truncate to 8 bits --

* 16-bit RGB/RGBA/gray+alpha PNG: Pillow's own zlib decoder is run twice on the same stream with byte-
  preserving raw modes (high bytes, then low bytes) and the two halves are combined, so the full 16 bits
  survive without another package (16-bit gray PNG is native in Pillow as ``I;16``);
* TIFF with more than 8 bits per sample: ``tifffile`` (needs ``imagecodecs`` for some compressions; without
  it those files raise :class:`UnsupportedImageFormatError` naming the package).

Safety: the pixel count is read from the header and checked against ``max_pixels`` *before* any pixel is
decoded (decompression bombs are refused without allocating); Pillow's own bomb warning is silenced only
because this check replaces it. Non-regular files (FIFOs, devices) are refused instead of read.

Writing (:func:`save_image`): PNG, 8- or 16-bit, gray or RGB, clamped and rounded, written atomically
(temporary file in the target directory, then ``os.replace``).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gvcore._validation import check_choice, check_positive_int
from gvcore.atomic import atomic_write

__all__ = [
    "SUPPORTED_FORMATS",
    "CorruptImageError",
    "EmptyImageError",
    "ImageLoadError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "NotAnImageError",
    "UnsupportedImageFormatError",
    "load_image",
    "save_image",
]

#: Container formats :func:`load_image` accepts (Pillow format names).
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
#: Default pixel limit of :func:`load_image` (64 megapixels).
DEFAULT_MAX_PIXELS = 64_000_000

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
# Pillow raw modes of 16-bit PNG colour types it would reduce to 8 bits -> (high-byte, low-byte) raw modes.
_PNG16_RAWMODES: dict[str, tuple[str, str | None]] = {
    "RGB;16B": ("RGB;16B", "RGB;16L"),
    "RGBA;16B": ("RGBA;16B", "RGBA;16L"),
    "LA;16B": ("RGBA", None),  # 4 bytes/pixel read verbatim as 8-bit RGBA: [L_hi, L_lo, A_hi, A_lo]
}


class ImageLoadError(ValueError):
    """An image could not be loaded; the message names the problem and the file (``.source``)."""

    def __init__(self, message: str, source: str = "<unknown>") -> None:
        """The message reads ``<message>: <source>``; ``source`` is kept as ``.source``."""
        super().__init__(f"{message}: {source}")
        self.source = source


class ImageNotFoundError(ImageLoadError):
    """The path does not exist, or is not a regular file."""


class EmptyImageError(ImageLoadError):
    """The file or buffer holds zero bytes."""


class NotAnImageError(ImageLoadError):
    """The data is not an image in any format Pillow recognises (e.g. a text file named ``.png``)."""


class UnsupportedImageFormatError(ImageLoadError):
    """A recognised image whose format or sample layout is not supported."""


class CorruptImageError(ImageLoadError):
    """A supported format whose data is truncated or damaged."""


class ImageTooLargeError(ImageLoadError):
    """The header declares more pixels than ``max_pixels`` (refused before decoding)."""


def _sniff(head: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1-8) to an ``(H, W, C)`` array, as ``ImageOps.exif_transpose`` does."""
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(orientation)
    return arr if op is None else op(arr)


def _check_pixels(width: int, height: int, max_pixels: int, source: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, over max_pixels={max_pixels} "
            "(refused before decoding; raise max_pixels to allow it)",
            source,
        )


def _to_rgb(arr: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` samples in [0, 1] -> ``(H, W, 3)``; gray replicated, extra channels dropped."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (1, 2):  # gray, gray + alpha
        return np.repeat(arr[..., :1], 3, axis=2)
    return arr[..., :3]


def _load_tiff_high_depth(
    open_stream: Callable[[], IO[bytes]], max_pixels: int, source: str
) -> np.ndarray | None:
    """Read a >8-bit TIFF with tifffile; ``None`` when it has <= 8 bits per sample (Pillow handles those)."""
    import tifffile

    try:
        with tifffile.TiffFile(open_stream()) as tif:
            page = tif.pages.first
            bits = int(np.max(page.bitspersample))
            if bits <= 8:
                return None
            _check_pixels(int(page.imagewidth), int(page.imagelength), max_pixels, source)
            photometric = int(page.photometric)
            if photometric not in (1, 2):  # MINISBLACK, RGB
                raise UnsupportedImageFormatError(
                    f"{bits}-bit TIFF with photometric interpretation {photometric} is not supported (only gray and RGB)",
                    source,
                )
            tag = page.tags.get(274)
            orientation = int(tag.value) if tag is not None else 1
            arr = page.asarray()
    except ImageLoadError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged or exotic files
        text = str(exc)
        if "imagecodecs" in text:
            raise UnsupportedImageFormatError(
                f"TIFF compression needs the 'imagecodecs' package ({text})", source
            ) from exc
        raise CorruptImageError(
            f"TIFF is truncated or damaged ({type(exc).__name__}: {text})", source
        ) from exc
    if arr.ndim == 3 and arr.shape[0] < arr.shape[-1] and page.planarconfig == 2:  # planar RGB -> interleaved
        arr = np.moveaxis(arr, 0, -1)
    if arr.dtype == np.uint16:
        values = arr.astype(np.float32) / 65535.0
    elif arr.dtype.kind == "f":
        values = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise UnsupportedImageFormatError(f"TIFF sample type {arr.dtype} is not supported", source)
    return _orient(_to_rgb(values), orientation)


def _load_png_16bit(open_stream: Callable[[], IO[bytes]], rawmode: str, orientation: int) -> np.ndarray:
    """Decode a 16-bit colour PNG with Pillow's decoder, keeping all 16 bits (see module docstring)."""
    high_mode, low_mode = _PNG16_RAWMODES[rawmode]

    def decode(mode: str) -> np.ndarray:
        im = Image.open(open_stream())
        im.tile = [im.tile[0]._replace(args=mode)]
        im.load()
        return np.asarray(im)

    high = decode(high_mode).astype(np.uint32)
    if low_mode is None:  # gray + alpha: bytes arrive verbatim
        values = high[..., 0] * 256 + high[..., 1]
    else:
        values = high[..., :3] * 256 + decode(low_mode)[..., :3].astype(np.uint32)
    return _orient(_to_rgb(values.astype(np.float32) / 65535.0), orientation)


def _load_pil(
    open_stream: Callable[[], IO[bytes]], sniffed: str | None, max_pixels: int, source: str
) -> np.ndarray:
    try:
        im = Image.open(open_stream())
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"Pillow refused a decompression bomb ({exc})", source) from exc
    except UnidentifiedImageError as exc:
        if sniffed is not None:
            raise CorruptImageError(f"{sniffed} header is truncated or damaged", source) from exc
        raise NotAnImageError(
            f"not an image (no known signature; supported formats: {', '.join(SUPPORTED_FORMATS)})", source
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise CorruptImageError(f"image header is damaged ({exc})", source) from exc
    if im.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageFormatError(
            f"format {im.format} is not supported (supported: {', '.join(SUPPORTED_FORMATS)})", source
        )
    _check_pixels(im.width, im.height, max_pixels, source)
    fmt = im.format
    try:
        rawmode = im.tile[0].args if fmt == "PNG" and im.tile else None
        if isinstance(rawmode, str) and rawmode in _PNG16_RAWMODES:
            orientation = int(im.getexif().get(0x0112, 1))
            return _load_png_16bit(open_stream, rawmode, orientation)
        im.load()
        upright = ImageOps.exif_transpose(im)
        if upright.mode.startswith("I;16") or upright.mode == "I":
            values = np.clip(np.asarray(upright).astype(np.float32) / 65535.0, 0.0, 1.0)
        elif upright.mode == "F":
            values = np.clip(np.asarray(upright, dtype=np.float32), 0.0, 1.0)
        else:
            mode = "L" if upright.mode in ("1", "L", "LA", "La") else "RGB"
            values = np.asarray(upright.convert(mode)).astype(np.float32) / 255.0
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise CorruptImageError(f"{fmt} data is truncated or damaged ({exc})", source) from exc
    return _to_rgb(values)


def load_image(
    path_or_bytes: str | os.PathLike[str] | bytes, max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    r"""Read an image file (or its bytes) into a ``(1, 3, H, W)`` float32 tensor in ``[0, 1]``.

    8-bit samples are divided by 255, 16-bit by 65535. Gray is replicated to three channels; alpha is
    dropped; palette and CMYK images are converted to RGB; EXIF orientation is applied.

    Args:
        path_or_bytes: a path, or the file's bytes (``bytes``/``bytearray``/``memoryview``).
        max_pixels: largest accepted ``width * height``, checked on the header before decoding.

    Returns:
        ``(1, 3, H, W)`` float32 CPU tensor in ``[0, 1]``.

    Raises:
        ImageNotFoundError: no such file, or not a regular file.
        EmptyImageError: zero bytes.
        NotAnImageError: not an image at all (e.g. text).
        UnsupportedImageFormatError: an image format or layout outside :data:`SUPPORTED_FORMATS`.
        CorruptImageError: truncated or damaged data.
        ImageTooLargeError: more than ``max_pixels`` pixels.
        TypeError: ``path_or_bytes`` is neither a path nor bytes.

    All ``ImageLoadError`` subclasses are ``ValueError``\ s whose message ends with the file name.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO()
        >>> Image.new("RGB", (4, 2), (255, 0, 0)).save(buf, format="PNG")
        >>> x = load_image(buf.getvalue())
        >>> tuple(x.shape), x.dtype, x[0, :, 0, 0].tolist()
        ((1, 3, 2, 4), torch.float32, [1.0, 0.0, 0.0])
    """
    max_pixels = check_positive_int("max_pixels", max_pixels)
    open_stream: Callable[[], IO[bytes]]
    streams: list[IO[bytes]] = []  # every stream opened from a path, closed at the end
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        source = f"<{len(data)} bytes>"
        if not data:
            raise EmptyImageError("image data is empty (0 bytes)", source)

        def open_stream() -> IO[bytes]:
            return io.BytesIO(data)

        head = data[:16]
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        path = Path(path_or_bytes)
        source = str(path)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ImageNotFoundError("no such file", source) from None
        except OSError as exc:
            raise ImageNotFoundError(f"cannot access file ({exc.strerror})", source) from exc
        if not stat.S_ISREG(info.st_mode):
            raise ImageNotFoundError("not a regular file", source)
        if info.st_size == 0:
            raise EmptyImageError("image file is empty (0 bytes)", source)

        def open_stream() -> IO[bytes]:
            stream = path.open("rb")
            streams.append(stream)
            return stream

        with path.open("rb") as fh:
            head = fh.read(16)
    else:
        raise TypeError(f"path_or_bytes must be a path or bytes; got {type(path_or_bytes).__name__}")

    sniffed = _sniff(head)
    try:
        with warnings.catch_warnings():
            # Our max_pixels check replaces Pillow's global bomb warning; palette-transparency notes are noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            values = None
            if sniffed == "TIFF":
                values = _load_tiff_high_depth(open_stream, max_pixels, source)
            if values is None:
                values = _load_pil(open_stream, sniffed, max_pixels, source)
    finally:
        for stream in streams:
            stream.close()
    array = np.ascontiguousarray(values.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(array).unsqueeze(0)


def _encode_png_16bit(samples: np.ndarray) -> bytes:
    """PNG bytes of ``(H, W)`` or ``(H, W, 3)`` uint16 samples (colour type 0 or 2, "Up" filter)."""
    h, w = samples.shape[:2]
    color_type = 0 if samples.ndim == 2 else 2
    rows = samples.astype(">u2").reshape(h, -1).view(np.uint8)
    up = rows.copy()
    up[1:] -= rows[:-1]  # uint8 wrap-around = PNG's modulo-256 "Up" filter
    raw = np.concatenate([np.full((h, 1), 2, dtype=np.uint8), up], axis=1).tobytes()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def save_image(x: torch.Tensor, path: str | os.PathLike[str], bits: Literal[8, 16] = 8) -> Path:
    """Write an image tensor in ``[0, 1]`` as a PNG, atomically.

    Values are clamped to ``[0, 1]`` and rounded to the nearest of the ``2**bits`` levels. One channel is
    saved as gray, three as RGB. The file is written to a temporary name in the target directory and moved
    into place with ``os.replace``, so readers never see a half-written file.

    Args:
        x: floating tensor ``(1, 3, H, W)``, ``(1, 1, H, W)``, ``(3, H, W)`` or ``(1, H, W)``; any device.
        path: destination ending in ``.png``; its directory must exist.
        bits: 8 or 16 bits per sample.

    Returns:
        The destination path.

    Example:
        >>> import tempfile, pathlib
        >>> x = torch.rand(1, 3, 5, 6)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = save_image(x, pathlib.Path(d) / "a.png", bits=16)
        ...     y = load_image(p)
        >>> bool((y - x).abs().max() < 1e-5)
        True
    """
    check_choice("bits", bits, (8, 16))
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point torch.Tensor; got {getattr(x, 'dtype', type(x).__name__)}"
        )
    shape = tuple(x.shape)
    if x.ndim == 4 and shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3) or x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"x must have shape (1, C, H, W) or (C, H, W) with C = 1 or 3; got {shape}")
    if torch.isnan(x).any():
        raise ValueError("x contains NaN; cannot save it as an image")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (save_image writes PNG); got {str(path)!r}")
    levels = 2**bits - 1
    arr = torch.round(x.detach().to("cpu", torch.float64).clamp(0.0, 1.0) * levels).numpy()
    arr = arr.transpose(1, 2, 0)
    if arr.shape[2] == 1:
        arr = arr[..., 0]
    if bits == 8:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8))).save(buf, format="PNG")
        payload = buf.getvalue()
    else:
        payload = _encode_png_16bit(arr.astype(np.uint16))
    atomic_write(target, payload)
    return target
