"""The images a ``--data`` argument names, decoded into HR/LR pairs as a protocol makes them.

Where the images come from (:func:`resolve_images`):

- ``"bundled"``: the images of :mod:`gvcore.data.bundled` (``train`` split for training, ``test`` split for
  validation and evaluation);
- a folder of HR images (``png``, ``jpg``/``jpeg``, ``bmp``, ``tif``/``tiff``, ``webp``; not recursive);
- a DIV2K or BasicSR benchmark layout (:mod:`gvcore.data.layouts`): the shipped (bicubic) LR files are used as
  they are when present (standard protocol only; explicit ``--lr`` files under every protocol).

LR images are made once per image when the data set is built, in memory, by :func:`gvcore.protocol.prepare_pair`
(the protocol's LR synthesis, on the 8-bit grid; HR cropped to a multiple of the scale, so ``HR = scale * LR``).
Training patches are cut from these pairs by :mod:`gvcore.data.patches`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from gvcore._validation import check_choice, check_positive_int
from gvcore.data.bundled import bundled_image_paths
from gvcore.data.layouts import IMAGE_EXTENSIONS, ImageSource, check_lr_size, detect_layout
from gvcore.io import ImageLoadError, load_image
from gvcore.protocol import Protocol, ProtocolLike, mod_crop, prepare_pair

__all__ = [
    "ImagePair",
    "given_lr_path",
    "load_pair_from_bytes",
    "load_pairs",
    "resolve_images",
    "to_float",
]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """An image tensor as float32 in [0, 1] (``uint8`` divided by 255)."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


@dataclass(frozen=True)
class ImagePair:
    """A decoded image pair, ``(3, H, W)`` HR and ``(3, H/s, W/s)`` LR, ``uint8`` (or float32 in [0, 1])."""

    name: str
    hr: torch.Tensor
    lr: torch.Tensor
    #: where LR came from: ``"file"`` (a given LR file) or ``"synth:bicubic"`` / ``"synth:bilinear"``
    lr_source: str = ""

    def as_float(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)`` as float32 ``(1, 3, h, w)`` / ``(1, 3, H, W)`` in [0, 1]."""
        return to_float(self.lr).unsqueeze(0), to_float(self.hr).unsqueeze(0)


def resolve_images(data: str | Path, split: Literal["train", "test"] = "train") -> list[ImageSource]:
    """The images a ``--data`` argument names, in a fixed (sorted) order.

    Args:
        data: ``"bundled"``, a folder of images, a DIV2K-style folder, or a single image file.
        split: which bundled split (and which DIV2K ``*_HR`` folder, when there are several) to use.

    Raises:
        ValueError: the folder is missing, empty or holds no images.
    """
    check_choice("split", split, ("train", "test"))
    if str(data) == "bundled":
        return [ImageSource(p.stem, p) for p in bundled_image_paths(split)]
    path = Path(data)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"data file {path} is not an image ({', '.join(IMAGE_EXTENSIONS)})")
        return [ImageSource(path.stem, path)]
    if not path.exists():
        raise ValueError(f"data folder {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"data {path} is neither a folder nor an image file")
    if not any(path.iterdir()):
        raise ValueError(f"data folder {path} is empty")
    layout = detect_layout(path, split)
    if not layout.sources:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in data folder {layout.hr_dir}")
    return layout.sources


def _compact(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` when every value is on the 8-bit grid (4x less memory), else float32 (16-bit sources)."""
    as_8bit = (x.clamp(0.0, 1.0) * 255.0).round()
    if float((as_8bit / 255.0 - x).abs().max()) <= 1e-6:
        return as_8bit.to(torch.uint8)
    return x.float()


def given_lr_path(source: ImageSource, scale: int, protocol: ProtocolLike = "standard") -> Path | None:
    """The LR file :func:`load_pairs` reads for ``source`` (``None``: LR is synthesised per protocol).

    A layout's shipped LR files are bicubic, so they serve the standard protocol only; explicit ``--lr`` files
    are used under every protocol.
    """
    lr_path = source.lr_paths.get(scale)
    if lr_path is not None and (Protocol.parse(protocol) is Protocol.STANDARD or source.lr_explicit):
        return lr_path
    return None


def load_pairs(
    sources: Sequence[ImageSource],
    scale: int,
    protocol: ProtocolLike = "standard",
    min_size: int = 1,
    use_shipped_lr: bool = True,
) -> list[ImagePair]:
    """Decode HR images and synthesise (or read) their LR images.

    Args:
        sources: from :func:`resolve_images`.
        scale: SR factor.
        protocol: how LR images are made (see :func:`gvcore.protocol.make_lr`); shipped DIV2K LR images are bicubic, so they
            are only used for ``"standard"``.
        min_size: smallest allowed HR height and width (the training crop).
        use_shipped_lr: read the layout's LR files when present (:mod:`gvcore.data.layouts`).

    Raises:
        ValueError: an image smaller than ``min_size`` (naming the file and both sizes), or a shipped LR
            image whose size is not the HR size divided by ``scale``.
        gvcore.io.ImageLoadError: an unreadable image.
    """
    check_positive_int("scale", scale)
    protocol = Protocol.parse(protocol)
    return [_load_pair(source, scale, protocol, min_size, use_shipped_lr) for source in sources]


def load_pair_from_bytes(
    source: ImageSource,
    hr_data: bytes,
    lr_data: bytes | None,
    scale: int,
    protocol: ProtocolLike = "standard",
) -> ImagePair:
    """:func:`load_pairs` of one source from its files' bytes, already read (the bytes a results key hashes).

    ``lr_data`` holds the bytes of :func:`given_lr_path`'s file (``None``: LR is synthesised per protocol).
    Errors name ``source``'s files, as :func:`load_pairs` does.
    """
    check_positive_int("scale", scale)
    protocol = Protocol.parse(protocol)
    if (given_lr_path(source, scale, protocol) is None) != (lr_data is None):
        raise ValueError(
            f"lr_data must hold the bytes of the given LR file of {source.hr_path} exactly when there is one"
        )
    return _load_pair(source, scale, protocol, 1, True, hr_data, lr_data)


def _decode(path: Path, data: bytes | None) -> torch.Tensor:
    if data is None:
        return load_image(path)
    try:
        return load_image(data)
    except ImageLoadError as err:  # name the file, not "<N bytes>"
        raise type(err)(str(err).removesuffix(f": {err.source}"), str(path)) from err


def _load_pair(
    source: ImageSource,
    scale: int,
    protocol: Protocol,
    min_size: int,
    use_shipped_lr: bool,
    hr_data: bytes | None = None,
    lr_data: bytes | None = None,
) -> ImagePair:
    hr = _decode(source.hr_path, hr_data)
    h, w = hr.shape[-2], hr.shape[-1]
    if h < min_size or w < min_size:
        raise ValueError(
            f"image {source.hr_path} is {h}x{w}, smaller than the crop {min_size}x{min_size}; "
            "use a smaller --crop or remove the image"
        )
    full = hr
    hr = mod_crop(hr, scale)
    lr_path = given_lr_path(source, scale, protocol) if use_shipped_lr else None
    if lr_path is not None:
        lr = _decode(lr_path, lr_data)
        check_lr_size(tuple(full.shape[-2:]), tuple(lr.shape[-2:]), scale, source.hr_path, lr_path)
        lr_source = "file"
    else:
        lr, hr = prepare_pair(full, scale, protocol)
        lr_source = protocol.lr_source
    return ImagePair(source.name, _compact(hr[0]), _compact(lr[0]), lr_source)
