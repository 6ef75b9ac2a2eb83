"""The test images behind the shared ``images`` fixture (tests/conftest.py).

A test module that uses ``images`` says which images it wants with a module-level ``IMAGES = NoiseImages(...)``
(seed and sizes, so the pixels of every module stay what they were); without one it gets :data:`DEFAULT_IMAGES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class NoiseImages:
    """RGB uniform-noise PNGs ``im0.png``, ``im1.png``, ... (``rng.random(...) * 255`` as ``uint8``).

    Attributes:
        seed: seed of ``numpy.random.default_rng``; the images are drawn in order from one generator.
        shapes: ``(height, width)`` of each image.
        folder: name of the temporary folder (``tmp_path_factory.mktemp``).
    """

    seed: int
    shapes: tuple[tuple[int, int], ...]
    folder: str = "images"

    def write(self, folder: Path) -> Path:
        """Write the images into ``folder``; returns it."""
        rng = np.random.default_rng(self.seed)
        for index, (height, width) in enumerate(self.shapes):
            pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"im{index}.png")
        return folder


#: what ``images`` holds in a module without ``IMAGES``: three 48 x 48 images
DEFAULT_IMAGES = NoiseImages(seed=0, shapes=((48, 48),) * 3)
