"""``gvcore precompute``: compute once what every visitor of the dashboard would otherwise compute.

The landing page's views (:mod:`dashboard.observation_view`) and the structure atlas of its default settings
(:mod:`dashboard.atlas_store`) and the scored series of the shipped snapshot runs (:mod:`dashboard.snapshot_store`),
chosen exactly as the pages choose them (:func:`dashboard.catalog.default_arch`,
:func:`dashboard.catalog.landing_models`), written to the user cache or, with ``shipped=True``, to
``<assets>/precomputed`` (what the repository ships). Entries already there are skipped. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard import atlas_store, catalog, observation_view, precomputed, snapshot_store, state

__all__ = ["ATLAS_DEFAULTS", "LandingJob", "atlas_default", "landing_jobs", "run"]

#: the atlas page's default settings: (direction, top-k, image names or None, deficit range or None)
ATLAS_DEFAULTS: tuple[Any, ...] = ("both", 8, None, None)


@dataclass(frozen=True)
class LandingJob:
    """One landing view to compute: the image and the models the page would run for it."""

    image_path: str
    scale: int
    protocol: str
    arch: str
    pair: tuple[str, ...]
    sweep: tuple[str, ...]


def _eval_table(protocol: str) -> Any:
    import pandas as pd

    path = state.results_dir() / f"eval_{protocol}.csv"
    return catalog.read_eval_csv(path) if path.is_file() else pd.DataFrame()


def _usable(protocol: str) -> list[catalog.CheckpointInfo]:
    infos = catalog.list_checkpoints(state.checkpoints_for(protocol))
    return [i for i in infos if "error" not in i and i.get("arch") and i.get("scale")]


def landing_jobs(every_view: bool = False) -> Iterator[LandingJob]:
    """The landing views to compute.

    The default view (first bundled image, first scale, standard protocol, default pair); with ``every_view``,
    every image x scale x protocol x architecture with a pair.
    """
    from gvcore.data.bundled import bundled_image_paths

    images = [str(p) for p in bundled_image_paths("test")]
    sweep_infos = catalog.list_checkpoints(state.sweep_dir())
    for protocol in ("standard", "official") if every_view else ("standard",):
        usable = _usable(protocol)
        scales = sorted({int(i["scale"]) for i in usable})
        table = _eval_table(protocol)
        for scale in scales if every_view else scales[:1]:
            default = catalog.default_arch(usable, table, scale)
            archs = (
                sorted({str(i["arch"]) for i in usable if i["scale"] == scale}) if every_view else [default]
            )
            for arch in archs:
                if arch is None:
                    continue
                pair, sweep = catalog.landing_models(usable, sweep_infos, arch, scale, protocol)
                for image in images if every_view else images[:1]:
                    yield LandingJob(image, scale, protocol, arch, pair, sweep)


def atlas_default(
    protocol: str = "standard",
) -> tuple[tuple[str, ...], str, int, str, tuple[Any, ...]] | None:
    """The atlas page's default request: (checkpoint paths, data, scale, protocol, settings), or ``None``."""
    usable = [i for i in catalog.list_checkpoints(state.checkpoints_for(protocol)) if "error" not in i]
    usable = [i for i in usable if i.get("scale")]
    scales = sorted({int(i["scale"]) for i in usable})
    if not scales:
        return None
    at_scale = {i["label"]: i for i in usable if i["scale"] == scales[0]}
    picked = catalog.default_pair_labels(usable, scales[0], _eval_table(protocol))
    paths = tuple(str(at_scale[label]["path"]) for label in picked if label in at_scale)
    return (paths, "bundled", scales[0], protocol, ATLAS_DEFAULTS) if paths else None


def _loader(device: str) -> Callable[[str], tuple[Any, dict[str, Any]]]:
    from gvcore.checkpoint.store import load_model

    cache: dict[str, tuple[Any, dict[str, Any]]] = {}

    def load(path: str) -> tuple[Any, dict[str, Any]]:
        if path not in cache:
            cache[path] = load_model(path, device=device)
        return cache[path]

    return load


def run(
    shipped: bool = False, every_view: bool = False, device: str = "cpu", say: Callable[[str], None] = print
) -> list[Path]:
    """Compute the landing views and the default atlas that are not stored yet; returns the files written.

    Args:
        shipped: write to ``<assets>/precomputed`` (the repository's) instead of the user cache.
        every_view: every landing view (:func:`landing_jobs`), not only the default one.
        device: where models run.
        say: progress lines.
    """
    from gvcore.eval.atlas import build_atlas
    from gvcore.protocol import Protocol

    folder = precomputed.shipped_dir() if shipped else precomputed.cache_dir()
    load = _loader(device)
    written: list[Path] = []
    for job in landing_jobs(every_view):
        key = observation_view.view_key(job.image_path, job.scale, job.protocol, job.pair, job.sweep)
        name = f"landing {Path(job.image_path).stem} x{job.scale} {job.protocol} {job.arch}"
        if (folder / f"{observation_view.KIND}-{key}.npz").is_file():
            say(f"{name}: already stored")
            continue
        view = observation_view.compute_view(
            job.image_path, job.scale, job.protocol, job.pair, job.sweep, load, tile=state.INFERENCE_TILE,
            display_side=state.DISPLAY_MAX_SIDE,
        )  # fmt: skip
        path = precomputed.save(observation_view.KIND, key, *observation_view.to_entry(view), folder=folder)
        say(f"{name}: {'written' if path else 'NOT written (folder not writable)'}")
        written += [path] if path else []
    request = atlas_default()
    if request is not None:
        paths, data, scale, protocol, settings = request
        key = atlas_store.atlas_key(paths, data, scale, protocol, settings, state.INFERENCE_TILE)
        if (folder / f"{atlas_store.KIND}-{key}.npz").is_file():
            say("atlas (default settings): already stored")
        else:
            models = {}
            for ckpt in paths:
                model, meta = load(ckpt)
                models[str(meta.get("label") or Path(ckpt).stem)] = model
            direction, top_k, images, deficit_range = settings
            result = build_atlas(
                models, data, scale, Protocol.parse(protocol), top_k=top_k, direction=direction, images=images,
                deficit_range=deficit_range, tile=state.INFERENCE_TILE,
            )  # fmt: skip
            path = precomputed.save(atlas_store.KIND, key, *atlas_store.to_entry(result), folder=folder)
            say(f"atlas (default settings): {'written' if path else 'NOT written (folder not writable)'}")
            written += [path] if path else []
    for name, snapshots in _shipped_snapshot_folders().items():
        key = snapshot_store.series_key(snapshots, "bundled", "standard")
        if (folder / f"{snapshot_store.KIND}-{key}.npz").is_file():
            say(f"snapshots {name}: already stored")
            continue
        table, errors = snapshot_store.compute_series(snapshots, "bundled", "standard", device)
        path = snapshot_store.save_series(key, table, errors, folder)
        say(f"snapshots {name}: {'written' if path else 'NOT written (folder not writable)'}")
        written += [path] if path else []
    return written


def _shipped_snapshot_folders() -> dict[str, Path]:
    """Snapshot folders of the shipped runs (``<assets>/runs``), scored on the bundled test split."""
    from gvcore.data.snapshots import find_snapshot_folders

    return find_snapshot_folders([state.assets_root() / "runs"])
