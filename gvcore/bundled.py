"""The bundled image set: local files that ship inside scikit-image, split into disjoint train and test sets.

Nothing is downloaded: only images present in ``skimage/data`` of the installed package are used. The test
split is chosen for structure (edges, text, texture), because on smooth images bicubic is already near-perfect
and nothing can be learned about structure (PAPER.md, "Choosing lambda"). The stereo pair
``motorcycle_left``/``motorcycle_right`` is nearly the same scene, so both sit in the train split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gvcore._validation import check_choice

__all__ = ["BUNDLED_SPLITS", "bundled_data_dir", "bundled_image_paths"]

#: split name -> skimage.data file names. Train and test are disjoint (checked by the tests).
BUNDLED_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "brick.png",
        "grass.png",
        "ihc.png",
        "hubble_deep_field.jpg",
        "retina.jpg",
        "moon.png",
        "cell.png",
        "color.png",
        "clock_motion.png",
        "logo.png",
    ),
    "test": (
        "camera.png",
        "text.png",
        "coins.png",
        "page.png",
        "gravel.png",
        "chelsea.png",
    ),
}

Split = Literal["train", "test", "all"]


def bundled_data_dir() -> Path:
    """Folder of scikit-image's bundled sample images (raises ``FileNotFoundError`` if absent)."""
    try:
        import skimage.data
    except ImportError as err:  # pragma: no cover - scikit-image is a requirement
        raise FileNotFoundError("the bundled images need scikit-image: pip install scikit-image") from err
    folder = Path(skimage.data.__file__).parent
    if not folder.is_dir():  # pragma: no cover
        raise FileNotFoundError(f"scikit-image data folder not found at {folder}")
    return folder


def bundled_image_paths(split: Split = "test") -> list[Path]:
    """Paths of the bundled images of one split (``"train"``, ``"test"`` or ``"all"``), in a fixed order.

    Example:
        >>> [p.name for p in bundled_image_paths("test")][:2]
        ['camera.png', 'text.png']
    """
    check_choice("split", split, ("train", "test", "all"))
    names = BUNDLED_SPLITS["train"] + BUNDLED_SPLITS["test"] if split == "all" else BUNDLED_SPLITS[split]
    folder = bundled_data_dir()
    paths = [folder / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"bundled images missing from {folder}: {', '.join(missing)}")
    return paths
