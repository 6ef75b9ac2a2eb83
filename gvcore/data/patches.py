"""Training patches: a deterministic, resumable stream of augmented HR/LR crops.

Training patches (:class:`PatchDataset`): sample ``k`` of the stream (``k = step * batch_size + slot``) is
image ``perm(seed, epoch)[k % N]`` with ``epoch = k // N``; its crop position, flips and 90-degree rotation come
from a generator seeded by ``(seed, epoch, k % N)``. Every sample is therefore a pure function of its index:
data order and augmentation do not depend on the number of workers or processes, and a resumed run only needs
its step to continue the stream exactly where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from gvcore._validation import check_positive_int
from gvcore.data.sources import ImagePair, to_float

__all__ = ["PatchDataset", "StepBatchSampler", "center_crop_pair", "seed_worker"]


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
        return to_float(lr), to_float(hr)


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
