"""The bundled image set: disjoint train and test splits of images that ship with installed packages or gvcore.

Nothing is downloaded. The **train** split is 15 local files of scikit-image. The **test** split (20 images,
fixed before any model was scored on it) is

- 13 *natural* images: 6 scikit-image files not used for training (camera, coins, chelsea, gravel, text, page)
  and 7 extracted from wheels of the package index into ``gvcore/data/testset/`` (china, flower, grace_hopper, aero,
  ascent, luispedro, nuclear);
- 7 *synthetic* images, reported as a separate group: scikit-image's phantom and chessboard, a drawn crowd scene
  (department_store) and four generated ones (zone plate, Siemens star, dead leaves, rendered text).

``gvcore/data/testset/SOURCES.md`` lists the source, licence and SHA-256 of every file in ``gvcore/data/testset/``;
``scripts/build_testset.py`` rebuilds them from pinned wheels. The stereo pair
``motorcycle_left``/``motorcycle_right`` is nearly the same scene, so both sit in the train split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gvcore._validation import check_choice

__all__ = [
    "BUNDLED_SPLITS",
    "PACKAGED_TEST_IMAGES",
    "TEST_GROUPS",
    "bundled_data_dir",
    "bundled_image_paths",
    "image_group",
    "packaged_testset_dir",
]

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
        "phantom.png",
        "chessboard_RGB.png",
    ),
}

#: test images shipped inside gvcore (``gvcore/data/testset/``), appended to scikit-image's test files.
PACKAGED_TEST_IMAGES: tuple[str, ...] = (
    "china.png",
    "flower.png",
    "grace_hopper.png",
    "aero.png",
    "ascent.png",
    "luispedro.png",
    "nuclear.png",
    "department_store.png",
    "zone_plate.png",
    "siemens_star.png",
    "dead_leaves.png",
    "rendered_text.png",
)

#: image stem -> group of the test split; results are reported per group (``"natural"`` / ``"synthetic"``).
TEST_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        [
            "camera",
            "text",
            "coins",
            "page",
            "gravel",
            "chelsea",
            "china",
            "flower",
            "grace_hopper",
            "aero",
            "ascent",
            "luispedro",
            "nuclear",
        ],
        "natural",
    ),
    **dict.fromkeys(
        [
            "phantom",
            "chessboard_RGB",
            "department_store",
            "zone_plate",
            "siemens_star",
            "dead_leaves",
            "rendered_text",
        ],
        "synthetic",
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
    if split != "train":
        paths += [packaged_testset_dir() / name for name in PACKAGED_TEST_IMAGES]
    missing = [f"{p.parent.name}/{p.name}" for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"bundled images missing: {', '.join(missing)}")
    return paths


def packaged_testset_dir() -> Path:
    """Folder of the test images that ship inside gvcore (``gvcore/data/testset/``, see its ``SOURCES.md``)."""
    return Path(__file__).resolve().parent / "testset"


def image_group(name: str) -> str:
    """Group of a test image by its stem: ``"natural"``, ``"synthetic"``, or ``""`` for an image not in the split.

    Example:
        >>> image_group("camera"), image_group("zone_plate"), image_group("my_photo")
        ('natural', 'synthetic', '')
    """
    return TEST_GROUPS.get(name, "")
