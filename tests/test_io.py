"""gvcore.io: every supported layout round-trips to known values; every bad file gives its specific error."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageOps

from gvcore.io import (
    CorruptImageError,
    EmptyImageError,
    ImageLoadError,
    ImageNotFoundError,
    ImageTooLargeError,
    NotAnImageError,
    UnsupportedImageFormatError,
    load_image,
    save_image,
)

RNG = np.random.default_rng(1234)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
RGB16 = RNG.integers(0, 65536, (5, 7, 3), dtype=np.uint16)


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def png16(samples: np.ndarray, exif: bytes | None = None, declared: tuple[int, int] | None = None) -> bytes:
    """Independent 16-bit PNG writer: row filters cycle None/Sub/Up/Average/Paeth (tests every unfilter).

    ``declared`` = (width, height) written to IHDR instead of the real size (to craft bomb headers).
    """
    if samples.ndim == 2:
        samples = samples[..., None]
    h, w, c = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = 2 * c
    raw = samples.astype(">u2").reshape(h, w * bpp // 2).view(np.uint8).astype(np.int64)
    rows = []
    for r in range(h):
        x = raw[r]
        up = raw[r - 1] if r else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        ftype = r % 5
        pred = [np.zeros_like(x), left, up, (left + up) // 2, _paeth(left, up, upleft)][ftype]
        rows.append(bytes([ftype]) + ((x - pred) % 256).astype(np.uint8).tobytes())
    dw, dh = declared or (w, h)
    ihdr = struct.pack(">IIBBBBB", dw, dh, 16, color_type, 0, 0, 0)
    extra = _chunk(b"eXIf", exif) if exif is not None else b""
    idat = _chunk(b"IDAT", zlib.compress(b"".join(rows)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + idat + _chunk(b"IEND", b"")


def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def chw(x: torch.Tensor) -> np.ndarray:
    assert x.shape[:2] == (1, 3)
    assert x.dtype == torch.float32
    return x[0].numpy().transpose(1, 2, 0)


class TestEightBit:
    @pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
    def test_lossless_rgb(self, fmt: str) -> None:
        kw = {"lossless": True} if fmt == "WEBP" else {}
        x = load_image(pil_bytes(Image.fromarray(RGB8), fmt, **kw))
        np.testing.assert_array_equal(chw(x) * 255, RGB8)

    def test_jpeg_matches_pillow_decode(self) -> None:
        data = pil_bytes(Image.fromarray(RGB8), "JPEG", quality=95)
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(chw(load_image(data)) * 255, expected)

    def test_gray_replicated(self) -> None:
        x = load_image(pil_bytes(Image.fromarray(RGB8[..., 0]), "PNG"))
        for c in range(3):
            np.testing.assert_array_equal(chw(x)[..., c] * 255, RGB8[..., 0])

    def test_rgba_alpha_dropped(self) -> None:
        rgba = np.concatenate([RGB8, np.zeros_like(RGB8[..., :1])], axis=2)  # fully transparent
        x = load_image(pil_bytes(Image.fromarray(rgba), "PNG"))
        np.testing.assert_array_equal(chw(x) * 255, RGB8)

    def test_gray_alpha(self) -> None:
        la = Image.fromarray(np.stack([RGB8[..., 1], RGB8[..., 2]], axis=2), mode="LA")
        np.testing.assert_array_equal(chw(load_image(pil_bytes(la, "PNG")))[..., 2] * 255, RGB8[..., 1])

    def test_palette(self) -> None:
        im = Image.fromarray(RGB8).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        expected = np.asarray(im.convert("RGB"))
        np.testing.assert_array_equal(chw(load_image(pil_bytes(im, "PNG"))) * 255, expected)

    def test_path_str_and_pathlike(self, tmp_path: Path) -> None:
        p = tmp_path / "a.png"
        p.write_bytes(pil_bytes(Image.fromarray(RGB8), "PNG"))
        torch.testing.assert_close(load_image(str(p)), load_image(p))
        torch.testing.assert_close(load_image(p), load_image(bytearray(p.read_bytes())))


class TestSixteenBit:
    def test_gray_png(self) -> None:
        data = pil_bytes(Image.fromarray(RGB16[..., 0]), "PNG")
        np.testing.assert_array_equal(chw(load_image(data))[..., 0] * 65535, RGB16[..., 0])

    @pytest.mark.parametrize("channels", [1, 2, 3, 4])
    def test_png_all_filters(self, channels: int) -> None:
        samples = RNG.integers(0, 65536, (11, 6, channels), dtype=np.uint16)
        x = chw(load_image(png16(samples)))
        expected = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2)
        np.testing.assert_array_equal(np.round(x * 65535.0), expected)

    @pytest.mark.parametrize("photometric", ["rgb", "minisblack"])
    @pytest.mark.parametrize("compression", [None, "zlib"])
    def test_tiff(self, photometric: str, compression: str | None) -> None:
        arr = RGB16 if photometric == "rgb" else RGB16[..., 0]
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, photometric=photometric, compression=compression)
        x = chw(load_image(buf.getvalue()))
        expected = arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)
        np.testing.assert_array_equal(np.round(x * 65535.0), expected)


class TestOrientation:
    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_exif_orientation_8_and_16_bit(self, orientation: int) -> None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im8 = Image.fromarray(RGB8)
        expected = np.asarray(
            ImageOps.exif_transpose(Image.open(io.BytesIO(pil_bytes(im8, "PNG", exif=exif))))
        )
        got8 = chw(load_image(pil_bytes(im8, "PNG", exif=exif))) * 255
        np.testing.assert_array_equal(got8, expected)
        got16 = chw(load_image(png16(RGB8.astype(np.uint16) * 257, exif=exif.tobytes()))) * 255
        np.testing.assert_allclose(got16, expected, rtol=0, atol=1e-3)

    def test_rotate_hand_checked(self) -> None:
        exif = Image.Exif()
        exif[0x0112] = 6  # stored image must be turned 90 degrees clockwise for display
        x = chw(load_image(pil_bytes(Image.fromarray(RGB8), "PNG", exif=exif)))
        assert x.shape == (7, 5, 3)
        np.testing.assert_array_equal(x * 255, np.rot90(RGB8, k=-1))


class TestErrors:
    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ImageNotFoundError, match=r"no such file: .*nope\.png"):
            load_image(tmp_path / "nope.png")

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ImageNotFoundError, match="not a regular file"):
            load_image(tmp_path)

    def test_empty_file(self, tmp_path: Path) -> None:
        p = tmp_path / "empty.png"
        p.write_bytes(b"")
        with pytest.raises(EmptyImageError, match=r"empty.*empty\.png"):
            load_image(p)
        with pytest.raises(EmptyImageError, match="empty"):
            load_image(b"")

    def test_text_named_png(self, tmp_path: Path) -> None:
        p = tmp_path / "notes.png"
        p.write_text("this is not an image\n" * 10)
        with pytest.raises(NotAnImageError, match=r"not an image.*notes\.png"):
            load_image(p)

    @pytest.mark.parametrize("keep", [0.05, 0.5, 0.9])
    def test_truncated_png(self, tmp_path: Path, keep: float) -> None:
        data = pil_bytes(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG")
        p = tmp_path / "cut.png"
        p.write_bytes(data[: max(20, int(len(data) * keep))])
        with pytest.raises(CorruptImageError, match=r"truncated or damaged.*cut\.png"):
            load_image(p)

    def test_truncated_16bit_png(self) -> None:
        data = png16(RNG.integers(0, 65536, (40, 40, 3), dtype=np.uint16))
        with pytest.raises(CorruptImageError, match="truncated or damaged"):
            load_image(data[: len(data) // 2])

    def test_truncated_jpeg(self) -> None:
        data = pil_bytes(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
        with pytest.raises(CorruptImageError, match="JPEG"):
            load_image(data[: len(data) // 2])

    def test_truncated_tiff(self) -> None:
        buf = io.BytesIO()
        tifffile.imwrite(buf, RNG.integers(0, 65536, (64, 64, 3), dtype=np.uint16), photometric="rgb")
        with pytest.raises(CorruptImageError, match="TIFF"):
            load_image(buf.getvalue()[: len(buf.getvalue()) // 2])

    def test_unsupported_format(self) -> None:
        with pytest.raises(UnsupportedImageFormatError, match="format GIF is not supported"):
            load_image(pil_bytes(Image.fromarray(RGB8).convert("P"), "GIF"))

    def test_decompression_bomb_header(self) -> None:
        # 100000 x 100000 declared in IHDR, a few bytes of data: refused before decoding, instantly
        bomb = png16(np.zeros((1, 1, 3), np.uint16), declared=(100_000, 100_000))
        with pytest.raises(ImageLoadError, match=r"100000x100000|decompression bomb"):
            load_image(bomb)

    def test_max_pixels(self) -> None:
        data = pil_bytes(Image.fromarray(RGB8), "PNG")
        with pytest.raises(ImageTooLargeError, match="7x5 = 35 pixels, over max_pixels=34"):
            load_image(data, max_pixels=34)
        assert load_image(data, max_pixels=35).shape == (1, 3, 5, 7)
        with pytest.raises(ImageTooLargeError, match="over max_pixels=10"):
            load_image(png16(RGB16), max_pixels=10)
        buf = io.BytesIO()
        tifffile.imwrite(buf, RGB16, photometric="rgb")
        with pytest.raises(ImageTooLargeError, match="over max_pixels=10"):
            load_image(buf.getvalue(), max_pixels=10)

    def test_pillow_bomb_limit_mapped(self) -> None:
        # between Pillow's warning and error thresholds: our limit decides, Pillow's warning is silenced
        huge = png16(np.zeros((1, 1, 3), np.uint16), declared=(20_000, 5_000))  # 100 MP
        with pytest.raises(ImageTooLargeError, match="20000x5000"):
            load_image(huge)
        bomb = png16(np.zeros((1, 1, 3), np.uint16), declared=(100_000, 100_000))
        with pytest.raises(ImageTooLargeError, match="decompression bomb"):
            load_image(bomb, max_pixels=10**12)  # Pillow's own hard limit still refuses it

    def test_error_is_value_error(self) -> None:
        with pytest.raises(ValueError, match="not an image"):
            load_image(b"plain text")

    def test_bad_arguments(self) -> None:
        with pytest.raises(TypeError, match="path or bytes"):
            load_image(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_pixels must be >= 1"):
            load_image(b"x", max_pixels=0)


class TestSave:
    @pytest.mark.parametrize("bits", [8, 16])
    @pytest.mark.parametrize("shape", [(1, 3, 6, 5), (3, 6, 5), (1, 1, 6, 5), (1, 6, 5)])
    def test_round_trip(self, tmp_path: Path, bits: int, shape: tuple[int, ...]) -> None:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1
        p = save_image(x, tmp_path / "out.png", bits=bits)
        levels = 2**bits - 1
        expected = torch.round(x.double().clamp(0, 1) * levels) / levels
        expected = expected.reshape(1, -1, 6, 5).expand(1, 3, 6, 5).float()
        torch.testing.assert_close(load_image(p), expected, rtol=0, atol=1e-7)
        with Image.open(p) as im:
            expected_mode = {8: "RGB", 16: "RGB"}[bits] if shape[-3] == 3 else {8: "L", 16: "I;16"}[bits]
            assert im.mode == expected_mode

    def test_atomic_overwrite_leaves_no_temp(self, tmp_path: Path) -> None:
        p = tmp_path / "img.png"
        save_image(torch.zeros(3, 4, 4), p)
        os.chmod(p, 0o640)
        save_image(torch.ones(3, 4, 4), p, bits=16)
        assert sorted(q.name for q in tmp_path.iterdir()) == ["img.png"]
        assert load_image(p).min().item() == 1.0
        assert (p.stat().st_mode & 0o777) == 0o640

    def test_failed_write_leaves_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            save_image(torch.zeros(3, 4, 4), tmp_path / "missing_dir" / "a.png")
        assert list(tmp_path.iterdir()) == []

    def test_cpu_copy_of_any_device_tensor_and_grad(self, tmp_path: Path) -> None:
        x = torch.rand(1, 3, 4, 4, requires_grad=True)
        path = save_image(x, tmp_path / "g.png")
        torch.testing.assert_close(
            load_image(path), x.detach().mul(255).round().div(255), rtol=0.0, atol=1e-7
        )
        assert x.grad is None

    @pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 4, 4), (4, 4), (1, 3, 0, 4)])
    def test_bad_shape(self, tmp_path: Path, shape: tuple[int, ...]) -> None:
        with pytest.raises(ValueError, match=r"x must have shape \(1, C, H, W\) or \(C, H, W\)"):
            save_image(torch.zeros(shape), tmp_path / "a.png")

    def test_bad_bits_suffix_nan_dtype(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="bits must be one of 8, 16; got 12"):
            save_image(torch.zeros(3, 4, 4), tmp_path / "a.png", bits=12)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"must end in \.png"):
            save_image(torch.zeros(3, 4, 4), tmp_path / "a.jpg")
        with pytest.raises(ValueError, match="NaN"):
            save_image(torch.full((3, 4, 4), float("nan")), tmp_path / "a.png")
        with pytest.raises(TypeError, match="floating-point"):
            save_image(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "a.png")
        assert list(tmp_path.iterdir()) == []
