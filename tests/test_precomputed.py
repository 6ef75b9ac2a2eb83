"""Results computed once and kept on disk (dashboard.precomputed) and what the shipped store holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import atlas_store, observation_view, precomputed, snapshot_store
from gvcore.eval.atlas import AtlasRegion, AtlasResult

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GVLAB_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("GVLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_an_entry_round_trips_arrays_and_json(stores: Path) -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "png/0": np.frombuffer(b"\x89PNG", np.uint8)}
    path = precomputed.save("kind", "k1", arrays, {"n": 3, "table": "x\n1\n"})
    assert path == stores / "cache" / "kind-k1.npz"
    loaded = precomputed.load("kind", "k1")
    assert loaded is not None
    got, meta = loaded
    np.testing.assert_array_equal(got["a"], arrays["a"])
    assert got["png/0"].tobytes() == b"\x89PNG"
    assert meta["n"] == 3
    assert meta["format"] == precomputed.FORMAT


def test_the_shipped_store_is_read_first(stores: Path) -> None:
    shipped = precomputed.shipped_dir()
    precomputed.save("kind", "k", {"v": np.zeros(1)}, {"where": "shipped"}, folder=shipped)
    precomputed.save("kind", "k", {"v": np.ones(1)}, {"where": "cache"})
    loaded = precomputed.load("kind", "k")
    assert loaded is not None
    assert loaded[1]["where"] == "shipped"


def test_objects_are_refused_and_junk_is_missing(stores: Path) -> None:
    with pytest.raises(TypeError, match="plain arrays"):
        precomputed.save("kind", "k", {"o": np.array([object()], dtype=object)}, {})
    (stores / "cache").mkdir()
    (stores / "cache" / "kind-bad.npz").write_bytes(b"not a zip")
    assert precomputed.load("kind", "bad") is None
    assert precomputed.load("kind", "absent") is None


def test_keys_follow_contents_not_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert precomputed.content_digest(a) == precomputed.content_digest(b)
    key = precomputed.entry_key("x", {"file": precomputed.content_digest(a)})
    assert key == precomputed.entry_key("x", {"file": precomputed.content_digest(b)})
    assert key != precomputed.entry_key("y", {"file": precomputed.content_digest(a)})


def test_an_atlas_round_trips(stores: Path) -> None:
    crop = np.full((32, 32, 3), 7, np.uint8)
    region = AtlasRegion(
        "worst", 0.5, "img", 32, 64, 32, 0.9, {"bicubic": 0.6, "m": 0.4}, {"HR": crop, "m": crop}
    )
    table = pd.DataFrame({"method": ["HR", "m"], "image": ["img", "img"], "var_ratio": [1.0, 0.7]})
    result = AtlasResult(
        2, "standard", "both", 4, ["bicubic", "m"], None, ["img"], {"worst": [region]}, table
    )
    precomputed.save(atlas_store.KIND, "k", *atlas_store.to_entry(result))
    entry = precomputed.load(atlas_store.KIND, "k")
    assert entry is not None
    back = atlas_store.from_entry(*entry)
    assert back.regions["worst"][0].deficits == region.deficits
    np.testing.assert_array_equal(back.regions["worst"][0].crops["m"], crop)
    pd.testing.assert_frame_equal(back.table, table)


def test_the_shipped_store_holds_the_pages_defaults() -> None:
    """The landing view, atlas and snapshot series a fresh install opens on are shipped.

    When this fails, the bundled images or checkpoints changed: run ``gvcore precompute --shipped``.
    """
    from dashboard import precompute_jobs, state

    shipped = {p.name for p in (ROOT / "assets" / "precomputed").glob("*.npz")}
    job = next(precompute_jobs.landing_jobs())
    key = observation_view.view_key(job.image_path, job.scale, job.protocol, job.pair, job.sweep)
    assert f"{observation_view.KIND}-{key}.npz" in shipped, "run: gvcore precompute --shipped"
    request = precompute_jobs.atlas_default()
    assert request is not None
    paths, data, scale, protocol, settings = request
    key = atlas_store.atlas_key(paths, data, scale, protocol, settings, state.INFERENCE_TILE)
    assert f"{atlas_store.KIND}-{key}.npz" in shipped, "run: gvcore precompute --shipped"
    for folder in precompute_jobs._shipped_snapshot_folders().values():
        key = snapshot_store.series_key(folder, "bundled", "standard")
        assert f"{snapshot_store.KIND}-{key}.npz" in shipped, "run: gvcore precompute --shipped"
