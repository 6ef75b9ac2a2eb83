"""The bundled splits: disjoint, present, at least 20 test images (>= 12 natural), shipped files as recorded."""

from __future__ import annotations

import hashlib
import re

import pytest

from gvcore.data.bundled import (
    BUNDLED_SPLITS,
    PACKAGED_TEST_IMAGES,
    TEST_GROUPS,
    bundled_image_paths,
    image_group,
    packaged_testset_dir,
)
from gvcore.io import load_image


def test_splits_are_disjoint_and_present() -> None:
    train = {p.stem for p in bundled_image_paths("train")}
    test = {p.stem for p in bundled_image_paths("test")}
    assert not train & test
    assert len(bundled_image_paths("all")) == len(train) + len(test)
    assert all(p.is_file() for p in bundled_image_paths("all"))


def test_test_split_has_20_images_13_natural_each_in_a_group() -> None:
    stems = [p.stem for p in bundled_image_paths("test")]
    assert len(stems) == len(set(stems)) == 20
    assert set(stems) == set(TEST_GROUPS)
    natural = [s for s in stems if image_group(s) == "natural"]
    assert len(natural) == 13
    assert {image_group(s) for s in stems} == {"natural", "synthetic"}


def test_shipped_test_images_match_their_recorded_hashes() -> None:
    """Every file of gvcore/data/testset is listed in SOURCES.md with a source, a licence and its SHA-256."""
    sources = (packaged_testset_dir() / "SOURCES.md").read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| (\S+\.png) \|.*\| ([0-9a-f]{64}) \|$", sources, re.M)
    }
    assert set(rows) == set(PACKAGED_TEST_IMAGES)
    for name, digest in rows.items():
        assert hashlib.sha256((packaged_testset_dir() / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("path", bundled_image_paths("test"), ids=lambda p: p.stem)
def test_every_test_image_is_large_enough_for_x4_and_ms_ssim(path: object) -> None:
    image = load_image(path)  # type: ignore[arg-type]
    assert image.shape[1] == 3
    assert min(image.shape[-2:]) >= 172  # the smallest (text.png, 448x172) still gives a 43-px LR image at x4


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        bundled_image_paths("validation")  # type: ignore[arg-type]


def test_train_split_is_unchanged() -> None:
    """The shipped checkpoints were trained on these 15 files: changing them would orphan every table."""
    assert len(BUNDLED_SPLITS["train"]) == 15
