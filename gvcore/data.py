"""Training and evaluation data: image folders, the DIV2K layout, the bundled split, LR synthesis, patches.

Where the images come from (:func:`resolve_images`):

- ``"bundled"``: the scikit-image sample files of :mod:`gvcore.bundled` (``train`` split for training,
  ``test`` split for validation and evaluation);
- a folder of HR images (``png``, ``jpg``/``jpeg``, ``bmp``, ``tif``/``tiff``, ``webp``; not recursive);
- a DIV2K or BasicSR benchmark layout (:mod:`gvcore.datasets`): the shipped (bicubic) LR files are used as they
  are when present (standard protocol only; explicit ``--lr`` files under every protocol).

How LR images are made (:func:`make_lr`), once per image when the data set is built, in memory:

- ``"standard"``: MATLAB-compatible bicubic downscale (:func:`gvcore.imresize`, antialiased), BasicSR/MATLAB;
- ``"official"``: the official GV code's ``Image.resize((W // s, H // s), Image.Resampling.BILINEAR)`` through PIL itself
  (:func:`pil_bilinear_resize`), from the whole image. VDSR brings it back to HR size itself (its
  ``interpolation`` option, ``"bilinear"`` for models trained on this degradation).

Both are clamped to [0, 1] and rounded to 8 bits, as if saved to PNG (DIV2K's shipped LR images are 8-bit too),
and the HR image is first cropped to a multiple of the scale (``mod_crop``), so ``HR = scale * LR`` exactly.

Training patches (:class:`PatchDataset`): sample ``k`` of the stream (``k = step * batch_size + slot``) is
image ``perm(seed, epoch)[k % N]`` with ``epoch = k // N``; its crop position, flips and 90-degree rotation come
from a generator seeded by ``(seed, epoch, k % N)``. Every sample is therefore a pure function of its index:
data order and augmentation do not depend on the number of workers or processes, and a resumed run only needs
its step to continue the stream exactly where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from gvcore._validation import check_choice, check_positive_int
from gvcore.metrics import quantize_8bit

__all__ = [
    "BASELINE_NAMES",
    "IMAGE_EXTENSIONS",
    "LR_SOURCES",
    "PROTOCOLS",
    "ImagePair",
    "ImageSource",
    "PatchDataset",
    "Protocol",
    "StepBatchSampler",
    "center_crop_pair",
    "given_lr_path",
    "load_pair_from_bytes",
    "load_pairs",
    "make_lr",
    "mod_crop",
    "pil_bilinear_resize",
    "prepare_pair",
    "resolve_images",
    "seed_worker",
    "upscale_baseline",
]

Protocol = Literal["standard", "official"]
PROTOCOLS: tuple[str, ...] = ("standard", "official")

#: file suffixes read as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageSource:
    """One HR image on disk and, where the layout ships them (:mod:`gvcore.datasets`), its LR images by scale."""

    name: str
    hr_path: Path
    lr_paths: dict[int, Path] = field(default_factory=dict)
    #: the LR files were given explicitly (``--lr DIR``): used under every protocol, not only the standard one
    lr_explicit: bool = False


def _as_float(x: torch.Tensor) -> torch.Tensor:
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
        return _as_float(self.lr).unsqueeze(0), _as_float(self.hr).unsqueeze(0)


def mod_crop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of ``(..., H, W)`` so ``H`` and ``W`` are multiples of ``scale`` (BasicSR)."""
    h, w = x.shape[-2] - x.shape[-2] % scale, x.shape[-1] - x.shape[-1] % scale
    return x[..., :h, :w]


def pil_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's ``Image.resize(size[::-1], Image.Resampling.BILINEAR)`` of each image of a batch, what the official GV code does.

    PIL's bilinear is a triangle filter stretched by the scale factor when shrinking (antialiased) and computed
    in fixed point on 8-bit images; it is *not* ``F.interpolate(mode="bilinear", antialias=True)`` (they differ
    by one 8-bit level on 9-17 % of pixels, PAPER.md). Images on the 8-bit grid go through PIL as 8-bit RGB /
    L images exactly as the official code's; others (16-bit sources) are resized channel by channel in PIL's
    float mode ``"F"`` and rounded to 8 bits.

    Args:
        x: ``(B, C, H, W)`` float in [0, 1], ``C`` = 1 or 3.
        size: ``(height, width)`` of the result.

    Returns:
        ``(B, C, height, width)`` float32 on the 8-bit grid, on ``x``'s device.

    Example:
        >>> pil_bilinear_resize(torch.zeros(1, 3, 8, 12), (4, 6)).shape
        torch.Size([1, 3, 4, 6])
    """
    from PIL import Image

    h, w = size
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be (B, 1 or 3, H, W); got shape {tuple(x.shape)}")
    if h < 1 or w < 1:
        raise ValueError(f"size must be at least 1x1; got {h}x{w}")
    cpu = x.detach().float().cpu()
    levels = (cpu.clamp(0.0, 1.0) * 255.0).round()
    on_grid = bool((levels / 255.0 - cpu).abs().max() <= 1e-6)
    out = []
    for image in cpu if not on_grid else levels:
        if on_grid:
            array = image.to(torch.uint8).permute(1, 2, 0).numpy()
            mode_array = array[..., 0] if array.shape[-1] == 1 else array
            resized = np.asarray(Image.fromarray(mode_array).resize((w, h), Image.Resampling.BILINEAR))
            t = torch.from_numpy(resized.copy()).float().reshape(h, w, -1).permute(2, 0, 1) / 255.0
        else:
            channels = [
                torch.from_numpy(
                    np.asarray(
                        Image.fromarray(c.numpy(), mode="F").resize((w, h), Image.Resampling.BILINEAR)
                    ).copy()
                )
                for c in image
            ]
            t = quantize_8bit(torch.stack(channels))
        out.append(t)
    return torch.stack(out).to(x.device)


def make_lr(
    hr: torch.Tensor, scale: int, protocol: Protocol = "standard", quantize: bool = True
) -> torch.Tensor:
    """Synthesise the LR image of an HR batch.

    Args:
        hr: ``(B, C, H, W)`` float in [0, 1]. ``"standard"``: ``H`` and ``W`` must be multiples of ``scale``
            (see :func:`mod_crop`). ``"official"``: any size; the result is ``(H // scale, W // scale)``
            resized from the whole image, as the official ``ValidationDataset`` does.
        scale: integer downscaling factor.
        protocol: ``"standard"`` (MATLAB bicubic, :func:`gvcore.imresize`) or ``"official"`` (PIL's
            ``Image.BILINEAR``, :func:`pil_bilinear_resize`, always 8-bit).
        quantize: clamp and round to 8 bits, as an LR image saved to PNG (the official LR is 8-bit anyway).

    Returns:
        ``(B, C, H // scale, W // scale)`` float32, on ``hr``'s device.

    Example:
        >>> make_lr(torch.rand(1, 3, 8, 12), 2).shape
        torch.Size([1, 3, 4, 6])
    """
    check_positive_int("scale", scale)
    check_choice("protocol", protocol, PROTOCOLS)
    h, w = hr.shape[-2], hr.shape[-1]
    size = (h // scale, w // scale)
    if protocol == "official":
        return pil_bilinear_resize(hr, size)
    if h % scale or w % scale:
        raise ValueError(f"hr size {h}x{w} must be a multiple of scale {scale}; crop it with mod_crop first")
    from gvcore.resize import imresize

    lr = imresize(hr, size=size)
    return quantize_8bit(lr) if quantize else lr


def prepare_pair(
    hr: torch.Tensor, scale: int, protocol: Protocol = "standard"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lr, hr_cropped)`` of a whole HR image as the protocol makes them (the one place LR is synthesised).

    ``"standard"``: HR cropped to a multiple of ``scale`` (:func:`mod_crop`), LR = MATLAB bicubic of the crop.
    ``"official"``: LR = PIL bilinear of the *whole* image to ``(H // s, W // s)`` as the official
    ``ValidationDataset`` does, HR cropped to ``s * LR`` (the official code itself fails on sides that are not
    multiples of ``s``; for those that are, the two coincide).

    Example:
        >>> lr, hr = prepare_pair(torch.rand(1, 3, 9, 10), 2, "official")
        >>> tuple(lr.shape), tuple(hr.shape)
        ((1, 3, 4, 5), (1, 3, 8, 10))
    """
    cropped = mod_crop(hr, scale)
    if min(cropped.shape[-2:]) < 1:
        raise ValueError(f"image {hr.shape[-2]}x{hr.shape[-1]} is smaller than the scale {scale}")
    return make_lr(hr if protocol == "official" else cropped, scale, protocol), cropped


#: the ``lr_source`` of a synthesised LR image per protocol (evaluation tables; ``"file"`` for given files).
LR_SOURCES: dict[str, str] = {"standard": "synth:bicubic", "official": "synth:bilinear"}

#: the interpolation baseline of each protocol: its method name in evaluation tables.
BASELINE_NAMES: dict[str, str] = {"standard": "bicubic", "official": "bilinear"}


def upscale_baseline(lr: torch.Tensor, scale: int, protocol: Protocol = "standard") -> torch.Tensor:
    """The interpolation baseline of a protocol, on the 8-bit grid, ``(B, C, scale*h, scale*w)``.

    ``"standard"``: MATLAB bicubic (:func:`gvcore.imresize`), clamped and rounded. ``"official"``: PIL bilinear
    up-sampling, which is exactly the input the official VDSR receives (``ValidationDataset``).
    Its name in tables is :data:`BASELINE_NAMES` ``[protocol]``.
    """
    check_positive_int("scale", scale)
    check_choice("protocol", protocol, PROTOCOLS)
    size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    if protocol == "official":
        return pil_bilinear_resize(lr, size)
    from gvcore.resize import imresize

    return quantize_8bit(imresize(lr, size=size))


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
        from gvcore.bundled import bundled_image_paths

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
    from gvcore.datasets import detect_layout

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


def given_lr_path(source: ImageSource, scale: int, protocol: Protocol = "standard") -> Path | None:
    """The LR file :func:`load_pairs` reads for ``source`` (``None``: LR is synthesised per protocol).

    A layout's shipped LR files are bicubic, so they serve the standard protocol only; explicit ``--lr`` files
    are used under every protocol.
    """
    lr_path = source.lr_paths.get(scale)
    if lr_path is not None and (protocol == "standard" or source.lr_explicit):
        return lr_path
    return None


def load_pairs(
    sources: Sequence[ImageSource],
    scale: int,
    protocol: Protocol = "standard",
    min_size: int = 1,
    use_shipped_lr: bool = True,
) -> list[ImagePair]:
    """Decode HR images and synthesise (or read) their LR images.

    Args:
        sources: from :func:`resolve_images`.
        scale: SR factor.
        protocol: how LR images are made (see :func:`make_lr`); shipped DIV2K LR images are bicubic, so they
            are only used for ``"standard"``.
        min_size: smallest allowed HR height and width (the training crop).
        use_shipped_lr: read the layout's LR files when present (:mod:`gvcore.datasets`).

    Raises:
        ValueError: an image smaller than ``min_size`` (naming the file and both sizes), or a shipped LR
            image whose size is not the HR size divided by ``scale``.
        gvcore.io.ImageLoadError: an unreadable image.
    """
    check_positive_int("scale", scale)
    check_choice("protocol", protocol, PROTOCOLS)
    return [_load_pair(source, scale, protocol, min_size, use_shipped_lr) for source in sources]


def load_pair_from_bytes(
    source: ImageSource, hr_data: bytes, lr_data: bytes | None, scale: int, protocol: Protocol = "standard"
) -> ImagePair:
    """:func:`load_pairs` of one source from its files' bytes, already read (the bytes a results key hashes).

    ``lr_data`` holds the bytes of :func:`given_lr_path`'s file (``None``: LR is synthesised per protocol).
    Errors name ``source``'s files, as :func:`load_pairs` does.
    """
    check_positive_int("scale", scale)
    check_choice("protocol", protocol, PROTOCOLS)
    if (given_lr_path(source, scale, protocol) is None) != (lr_data is None):
        raise ValueError(
            f"lr_data must hold the bytes of the given LR file of {source.hr_path} exactly when there is one"
        )
    return _load_pair(source, scale, protocol, 1, True, hr_data, lr_data)


def _decode(path: Path, data: bytes | None) -> torch.Tensor:
    from gvcore.io import ImageLoadError, load_image

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
        from gvcore.datasets import check_lr_size

        lr = _decode(lr_path, lr_data)
        check_lr_size(tuple(full.shape[-2:]), tuple(lr.shape[-2:]), scale, source.hr_path, lr_path)
        lr_source = "file"
    else:
        lr, hr = prepare_pair(full, scale, protocol)
        lr_source = LR_SOURCES[protocol]
    return ImagePair(source.name, _compact(hr[0]), _compact(lr[0]), lr_source)


def center_crop_pair(pair: ImagePair, scale: int, crop: int) -> ImagePair:
    """Aligned centre crop of at most ``crop`` HR pixels (rounded down to a multiple of ``scale``)."""
    lr_h, lr_w = pair.lr.shape[-2], pair.lr.shape[-1]
    ch, cw = min(crop // scale, lr_h), min(crop // scale, lr_w)
    top, left = (lr_h - ch) // 2, (lr_w - cw) // 2
    lr = pair.lr[:, top : top + ch, left : left + cw]
    hr = pair.hr[:, top * scale : (top + ch) * scale, left * scale : (left + cw) * scale]
    return ImagePair(pair.name, hr, lr)


def _augment(x: torch.Tensor, hflip: bool, vflip: bool, transpose: bool) -> torch.Tensor:
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if transpose:
        x = x.transpose(-1, -2)
    return x


class PatchDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random aligned ``(lr, hr)`` patches of preloaded image pairs, a pure function of the sample index.

    Args:
        pairs: decoded images (:func:`load_pairs`), each at least ``crop`` pixels on both sides.
        scale: SR factor.
        crop: HR patch side; must be a multiple of ``scale`` (the LR patch is ``crop / scale``).
        seed: the run's seed.
        augment: random horizontal/vertical flips and transposition (the 8 dihedral transforms).

    ``dataset[k]`` is sample ``k`` of the stream (any ``k >= 0``; ``len`` is the epoch size, the number of
    images): ``(lr, hr)`` float32 in [0, 1], shapes ``(3, crop/scale, crop/scale)`` and ``(3, crop, crop)``.
    """

    def __init__(
        self, pairs: Sequence[ImagePair], scale: int, crop: int, seed: int, augment: bool = True
    ) -> None:
        """Validate ``scale``/``crop`` against every image and keep the pairs.

        Raises:
            ValueError: ``crop`` is not a positive multiple of ``scale``, ``pairs`` is empty, or an image is
                smaller than ``crop``.
        """
        check_positive_int("scale", scale)
        check_positive_int("crop", crop)
        if crop % scale:
            raise ValueError(f"crop must be a multiple of scale {scale}; got {crop}")
        if not pairs:
            raise ValueError("pairs must hold at least one image")
        for pair in pairs:
            if min(pair.hr.shape[-2:]) < crop:
                raise ValueError(
                    f"image {pair.name} is {pair.hr.shape[-2]}x{pair.hr.shape[-1]}, smaller than the crop {crop}"
                )
        self.pairs = list(pairs)
        self.scale, self.crop, self.seed, self.augment = scale, crop, int(seed), augment

    def __len__(self) -> int:
        """The epoch size: the number of images."""
        return len(self.pairs)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The image order of one epoch (a permutation seeded by ``(seed, epoch)``)."""
        return np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.pairs))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index``: the epoch's image at the position, a seeded random crop and augmentation."""
        epoch, position = divmod(int(index), len(self.pairs))
        pair = self.pairs[int(self.epoch_order(epoch)[position])]
        rng = np.random.default_rng([self.seed, 1, epoch, position])
        lc = self.crop // self.scale
        top = int(rng.integers(0, pair.lr.shape[-2] - lc + 1))
        left = int(rng.integers(0, pair.lr.shape[-1] - lc + 1))
        s = self.scale
        lr = pair.lr[:, top : top + lc, left : left + lc]
        hr = pair.hr[:, top * s : (top + lc) * s, left * s : (left + lc) * s]
        if self.augment:
            hflip, vflip, transpose = (bool(b) for b in rng.integers(0, 2, size=3))
            lr, hr = _augment(lr, hflip, vflip, transpose), _augment(hr, hflip, vflip, transpose)
        return _as_float(lr), _as_float(hr)


class StepBatchSampler(Sampler[list[int]]):
    """Yields, for each step in ``[start_step, steps)``, this rank's share of the step's global batch.

    Step ``t`` covers samples ``t * batch_size + j`` for ``j < batch_size``; rank ``r`` of ``world_size``
    takes ``j = r, r + world_size, ...``, so the union over ranks is the single-process batch.
    """

    def __init__(
        self, batch_size: int, steps: int, start_step: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        """Validate the batch split.

        Raises:
            ValueError: ``batch_size`` or ``world_size`` is not positive, ``batch_size`` is not divisible by
                ``world_size``, or ``rank`` is outside ``[0, world_size)``.
        """
        check_positive_int("batch_size", batch_size)
        check_positive_int("world_size", world_size)
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by the number of processes {world_size}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}); got {rank}")
        self.batch_size, self.steps, self.start_step = batch_size, steps, start_step
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        """The number of steps left: ``steps - start_step`` (never negative)."""
        return max(0, self.steps - self.start_step)

    def __iter__(self) -> Iterator[list[int]]:
        """This rank's sample indices, one list per remaining step."""
        for step in range(self.start_step, self.steps):
            base = step * self.batch_size
            yield [base + j for j in range(self.rank, self.batch_size, self.world_size)]


def seed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn``: seed ``random`` and NumPy from the worker's torch seed.

    Samples do not draw from these generators (see :class:`PatchDataset`); seeding them keeps any user
    transform deterministic too.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
