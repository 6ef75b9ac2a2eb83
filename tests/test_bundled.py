from __future__ import annotations

import pytest

from gvcore.bundled import BUNDLED_SPLITS, bundled_image_paths


def test_splits_are_disjoint_and_present() -> None:
    assert not set(BUNDLED_SPLITS["train"]) & set(BUNDLED_SPLITS["test"])
    assert len(bundled_image_paths("all")) == len(BUNDLED_SPLITS["train"]) + len(BUNDLED_SPLITS["test"])
    assert all(p.is_file() for p in bundled_image_paths("train"))


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        bundled_image_paths("validation")  # type: ignore[arg-type]
