"""Cached loaders: models, images and arrays in caches bounded in bytes with expiry; small tables in ``st.cache_data``.

Models live in :data:`MODEL_CACHE` and images, outputs, maps and score tables in :data:`DATA_CACHE`
(:class:`dashboard.bounded_cache.ByteBudgetCache`, budgets :data:`dashboard.state.MODEL_CACHE_BYTES` and
:data:`dashboard.state.DATA_CACHE_BYTES`, entries older than :data:`dashboard.state.CACHE_TTL_S` recomputed), so
the server's memory has a ceiling however many different images or checkpoints its users bring. Cached values
are shared, not copied: callers never modify them. Every cached function is keyed by plain strings and numbers (paths plus modification times, so a rewritten
file is reloaded); tensors that would be slow to hash are passed as ``_``-prefixed arguments next to a key
that identifies them. The work itself is done by :mod:`dashboard.analysis` and :mod:`dashboard.catalog`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from dashboard import analysis, catalog, state
from dashboard import observation_view as observation_view_module
from dashboard.bounded_cache import ByteBudgetCache, budget_cached
from dashboard.safety import LoadedCheckpoint, decode_image_upload, load_checkpoint_upload

__all__ = [
    "DATA_CACHE",
    "MODEL_CACHE",
    "bundled_images",
    "checkpoint_infos",
    "decoded_upload",
    "eval_table",
    "eval_table_any",
    "file_key",
    "gradients_for",
    "load_image_file",
    "load_model",
    "lpips_note",
    "maps_for",
    "metrics_for",
    "model_choices",
    "observation_bundle",
    "observation_view",
    "paper_results",
    "run_logs",
    "shipped_eval",
    "sr_output",
    "sr_with",
    "sweep_bundle",
    "uploaded_model",
    "variances_for",
]


#: models (bundled, run and uploaded checkpoints), bounded by their parameters' bytes.
MODEL_CACHE = ByteBudgetCache("models", state.MODEL_CACHE_BYTES, state.CACHE_TTL_S)
#: images, super-resolved outputs, gradient/variance maps and score tables, bounded by their bytes.
DATA_CACHE = ByteBudgetCache("data", state.DATA_CACHE_BYTES, state.CACHE_TTL_S)


def _spinner(text: str) -> Any:
    return lambda: st.spinner(text)


def file_key(path: Path | str) -> float:
    """Modification time of ``path`` (0 when missing): part of cache keys so rewritten files reload."""
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def folder_key(folder: Path, pattern: str = "*") -> str:
    """A signature of a folder's matching files (names and mtimes)."""
    if not folder.is_dir():
        return ""
    return ";".join(f"{p.name}:{p.stat().st_mtime:.0f}" for p in sorted(folder.glob(pattern)))


@st.cache_data(show_spinner=False, max_entries=64, ttl=state.CACHE_TTL_S)
def checkpoint_infos(folder: str, signature: str) -> list[dict[str, Any]]:
    """Metadata of the checkpoints in ``folder`` (``signature`` = :func:`folder_key`, for invalidation)."""
    del signature
    return catalog.list_checkpoints(Path(folder))


def model_choices(protocol: str) -> list[dict[str, Any]]:
    """The checkpoints Compare and Benchmark offer under ``protocol`` (:func:`catalog.selectable_checkpoints`).

    Bundled (``state.checkpoints_for``, then the published models of :func:`published_folders`), your runs
    (``GVLAB_RUNS``) and checkpoint folders (``GVLAB_CHECKPOINTS``).

    Listed again whenever a file's name or modification time changes (:func:`catalog.sources_signature`), so a
    new run appears without a restart.
    """
    bundled, folders, roots = state.checkpoints_for(protocol), state.checkpoint_folders(), state.runs_roots()
    published = published_folders()
    signature = catalog.sources_signature([bundled, *folders, *published], roots)
    return _model_choices(
        protocol,
        str(bundled),
        tuple(map(str, folders)),
        tuple(map(str, roots)),
        signature,
        tuple(map(str, published)),
    )


def published_folders() -> list[Path]:
    """Where published models are (:mod:`gvcore.zoo.registry`): ``<assets>/checkpoints/published``, then the zoo folder."""
    from gvcore.zoo.registry import zoo_dir

    return [state.checkpoints_dir() / "published", zoo_dir()]


@st.cache_data(show_spinner=False, max_entries=16, ttl=state.CACHE_TTL_S)
def _model_choices(
    protocol: str,
    bundled: str,
    folders: tuple[str, ...],
    roots: tuple[str, ...],
    signature: str,
    published: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    del signature
    # published models (gvcore.zoo.registry) are offered with the bundled checkpoints, after them, marked "· published"
    published_infos = catalog.published_checkpoint_infos([Path(f) for f in published])
    groups = {
        "bundled": catalog.list_checkpoints(Path(bundled)) + published_infos,
        "runs": catalog.run_checkpoint_infos([Path(r) for r in roots]),
        "checkpoint folders": catalog.folder_checkpoint_infos([Path(f) for f in folders]),
    }
    return catalog.selectable_checkpoints(protocol, groups)


@budget_cached(MODEL_CACHE, _spinner("Loading model…"))
def load_model(path: str, mtime: float) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A bundled checkpoint's model (eval mode, on the dashboard's device) and metadata."""
    del mtime
    from gvcore.checkpoint.store import load_model as gv_load_model

    return gv_load_model(path, device=state.device())


@st.cache_data(show_spinner=False, ttl=state.CACHE_TTL_S)
def bundled_images() -> dict[str, str]:
    """Bundled test-split image name -> path (``{}`` when scikit-image's data is missing)."""
    from gvcore.data.bundled import bundled_image_paths

    try:
        return {p.stem: str(p) for p in bundled_image_paths("test")}
    except FileNotFoundError:
        return {}


@budget_cached(DATA_CACHE)
def load_image_file(path: str, mtime: float) -> torch.Tensor:
    """A server-side image as ``(1, 3, H, W)`` float32 in [0, 1]."""
    del mtime
    from gvcore.io import load_image

    return load_image(path, max_pixels=state.max_upload_pixels())


@budget_cached(DATA_CACHE)
def decoded_upload(name: str, digest: str, max_pixels: int, _data: bytes) -> torch.Tensor:
    """An uploaded image (identified by its content ``digest``) decoded once, as ``(1, 3, H, W)`` float32.

    Raises :class:`dashboard.safety.UploadError` (not cached) when the file is refused.
    """
    del digest
    return decode_image_upload(name, _data, max_pixels)


@budget_cached(DATA_CACHE)
def degraded_pair(
    image_key: str, scale: int, protocol: str, _hr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(LR, HR)`` made from the HR image identified by ``image_key`` as ``protocol`` does (computed once)."""
    from gvcore.protocol import Protocol, prepare_pair

    return prepare_pair(_hr, scale, Protocol.parse(protocol))


@budget_cached(DATA_CACHE)
def baseline_output(image_key: str, scale: int, protocol: str, _lr: torch.Tensor) -> torch.Tensor:
    """``protocol``'s baseline (bicubic or bilinear) upscaling of the LR image identified by ``image_key``."""
    from gvcore.protocol import Protocol, upscale_baseline

    return upscale_baseline(_lr, scale, Protocol.parse(protocol))


@budget_cached(DATA_CACHE)
def sr_output(
    model_path: str, mtime: float, image_key: str, scale: int, protocol: str, _lr: torch.Tensor
) -> torch.Tensor:
    """A bundled model's output on the LR image identified by ``image_key``, as ``protocol`` scores it."""
    model, _ = load_model(model_path, mtime)
    return analysis.super_resolve(model, _lr, scale, protocol, tile=state.INFERENCE_TILE)


@budget_cached(DATA_CACHE)
def sr_with(
    model_key: str,
    image_key: str,
    scale: int,
    protocol: str,
    _model: torch.nn.Module,
    _lr: torch.Tensor,
) -> torch.Tensor:
    """The output of ``_model`` on an LR image as ``protocol`` scores it, computed tile by tile.

    ``model_key`` and ``image_key`` identify the model and the image; tiling keeps memory bounded. Pages
    report progress per model around the call: a cached function must not write into elements created outside
    it.
    """
    return analysis.super_resolve(_model, _lr, scale, protocol, tile=state.INFERENCE_TILE)


@budget_cached(MODEL_CACHE, _spinner("Loading the uploaded checkpoint…"))
def uploaded_model(name: str, digest: str, scale: int, _data: bytes) -> LoadedCheckpoint:
    """An uploaded checkpoint, loaded safely (see :func:`dashboard.safety.load_checkpoint_upload`).

    Raises :class:`dashboard.safety.UploadError` (not cached) when the file is refused.
    """
    del digest
    return load_checkpoint_upload(
        name, _data, scale, device=state.device(), max_bytes=state.max_upload_bytes()
    )


@budget_cached(DATA_CACHE, _spinner("Scoring…"))
def metrics_for(
    outputs_key: str, scale: int, protocol: str, _outputs: dict[str, torch.Tensor], _hr: torch.Tensor | None
) -> pd.DataFrame:
    """:func:`gvcore.eval.scoring.score_outputs` of outputs identified by ``outputs_key`` (already score-ready).

    With an HR reference, HR's own row (:func:`gvcore.eval.scoring.reference_row`) comes first, as in ``gvcore eval``.
    """
    from gvcore.eval.scoring import reference_row, score_outputs
    from gvcore.protocol import Protocol

    rows = score_outputs(_outputs, _hr, scale, Protocol.parse(protocol))
    return analysis.rows_frame(([reference_row(_hr)] if _hr is not None else []) + rows)


@budget_cached(DATA_CACHE)
def gradients_for(
    image_key: str, operator: str, padding: str, gray: bool, _x: torch.Tensor | Callable[[], torch.Tensor]
) -> analysis.GradientSet:
    """Gradient maps of the image identified by ``image_key``; keyed by the gradient settings only.

    ``_x`` is the image, or a function returning it (called only when the maps are not cached, so a cache hit
    never loads the image).
    """
    settings = analysis.GradientSettings(operator=operator, padding=padding, gray=gray)
    return analysis.compute_gradients(_x() if callable(_x) else _x, settings)


@budget_cached(DATA_CACHE)
def variances_for(
    image_key: str, settings: analysis.GradientSettings, _gradients: analysis.GradientSet
) -> tuple[np.ndarray, np.ndarray]:
    """Patch-variance maps of Gx and Gy of the image identified by ``image_key`` under ``settings``."""
    return analysis.compute_variances(_gradients, settings)


def maps_for(image_key: str, settings: analysis.GradientSettings, _x: torch.Tensor) -> analysis.MapSet:
    """Gradient and variance maps of the image identified by ``image_key`` under ``settings``.

    The gradient maps are cached per image and gradient settings (:func:`gradients_for`), so a new patch size,
    stride or estimator only computes the variances (:func:`variances_for`).
    """
    gradients = gradients_for(image_key, settings.operator, settings.padding, settings.gray, _x)
    return analysis.maps_from(gradients, variances_for(image_key, settings, gradients))


@budget_cached(DATA_CACHE, _spinner("Computing the observation…"))
def observation_bundle(
    image_path: str, scale: int, model_paths: tuple[str, ...], protocol: str
) -> dict[str, Any]:
    """Everything the landing page shows for one image, scale and protocol, computed once.

    Scored by :func:`gvcore.eval.scoring.score_image` (the path ``gvcore eval`` uses). Returns a dict with ``outputs``
    (name -> score-ready tensor, HR first), ``images`` (name -> uint8), ``png`` (name -> PNG bytes of the image
    shrunk to :data:`state.DISPLAY_MAX_SIDE` by ``display_factor``: encoded once, not on every page view),
    ``maps`` (name -> :class:`analysis.MapSet`), ``metrics`` (table, one row per method), ``labels`` (path ->
    method name) and ``size``.
    """
    from gvcore.eval.scoring import score_image
    from gvcore.protocol import Protocol

    hr = load_image_file(image_path, file_key(image_path))
    models, labels = {}, {}
    for path in model_paths:
        model, meta = load_model(path, file_key(path))
        labels[path] = str(meta.get("label") or Path(path).stem)
        models[labels[path]] = model
    scored = score_image(hr, scale, Protocol.parse(protocol), models, tile=state.INFERENCE_TILE)
    outputs = {"HR": scored.hr, **scored.outputs}
    settings = analysis.GradientSettings()
    images = {k: analysis.to_uint8(v) for k, v in outputs.items()}
    shown = {k: analysis.resize_for_display(v, state.DISPLAY_MAX_SIDE) for k, v in images.items()}
    return {
        "outputs": outputs,
        "images": images,
        "png": {k: analysis.png_bytes(v) for k, (v, _) in shown.items()},
        "display_factor": max((f for _, f in shown.values()), default=1),
        "maps": {k: analysis.compute_maps(v, settings) for k, v in outputs.items()},
        "metrics": analysis.rows_frame(scored.rows),
        "labels": labels,
        "size": tuple(scored.hr.shape[-2:]),
    }


@budget_cached(DATA_CACHE, _spinner("Running the λ sweep on this image…"))
def sweep_bundle(image_path: str, scale: int, model_paths: tuple[str, ...]) -> dict[str, Any]:
    """The sweep checkpoints on one image (standard protocol, :func:`gvcore.eval.scoring.score_image`).

    Returns ``outputs`` (label -> tensor), ``labels`` (in ``model_paths`` order) and ``metrics``: one row per
    checkpoint with its ``lambda`` (from the checkpoint's metadata), ``psnr``, ``ssim``, ``var_ratio``,
    ``gv_distance``.
    """
    from gvcore.eval.scoring import score_image

    hr = load_image_file(image_path, file_key(image_path))
    models, labels, weights = {}, [], {}
    for path in model_paths:
        model, meta = load_model(path, file_key(path))
        label = str(meta.get("label") or Path(path).stem)
        loss = meta.get("loss") or {}
        weights[label] = float(loss.get("gv_weight") or 0.0) if isinstance(loss, dict) else 0.0
        models[label] = model
        labels.append(label)
    scored = score_image(hr, scale, "standard", models, tile=state.INFERENCE_TILE)
    frame = analysis.rows_frame([r for r in scored.rows if r["method"] in weights])
    frame.insert(1, "lambda", frame["method"].map(weights))
    return {"outputs": {k: scored.outputs[k] for k in labels}, "labels": labels, "metrics": frame}


def observation_view(
    image_path: str, scale: int, protocol: str, pair: tuple[str, ...], sweep: tuple[str, ...]
) -> observation_view_module.ObservationView:
    """The landing page's view, computed at most once per machine.

    From the data cache, else from disk (shipped, or computed before on this machine: :mod:`dashboard.precomputed`),
    else computed here (the models run once, under a spinner) and written to the user cache.
    """
    from dashboard import precomputed

    key = observation_view_module.view_key(image_path, scale, protocol, pair, sweep)
    known = DATA_CACHE.get(("observation-view", key))
    if known is not None:
        return known  # type: ignore[no-any-return]
    entry = precomputed.load(observation_view_module.KIND, key)
    if entry is not None:
        view = observation_view_module.from_entry(*entry)
    else:
        with st.spinner(
            f"Running {len(pair) + len(sweep)} models on this image once (kept on disk for the next visits)…"
        ):
            view = observation_view_module.compute_view(
                image_path,
                scale,
                protocol,
                pair,
                sweep,
                lambda path: load_model(path, file_key(path)),
                tile=state.INFERENCE_TILE,
                display_side=state.DISPLAY_MAX_SIDE,
            )
        precomputed.save(observation_view_module.KIND, key, *observation_view_module.to_entry(view))
    DATA_CACHE.put(("observation-view", key), view)
    return view


def lpips_note() -> str:
    """One line on the optional ``lpips`` column (:func:`gvcore.eval.lpips.lpips_available`), with no server path."""
    from gvcore.eval.lpips import lpips_available

    ok, _ = lpips_available()
    if ok:
        return "LPIPS (AlexNet, v0.1): computed from weights on this machine (`lpips` column)."
    return (
        "No LPIPS column: it needs `pip install lpips` and torchvision's AlexNet weights in the torch hub cache; "
        "nothing is downloaded at run time (docs/guide/training.md, 'LPIPS')."
    )


@st.cache_data(show_spinner=False, max_entries=64, ttl=state.CACHE_TTL_S)
def eval_table(path: str, mtime: float) -> pd.DataFrame:
    """A tidy evaluation CSV (``assets/results/eval_*.csv`` or a ``gvcore eval`` output)."""
    del mtime
    return catalog.read_eval_csv(Path(path))


def shipped_published() -> pd.DataFrame:
    """The published models scored by the reproduction (``<assets>/results/eval_published.csv``; empty when missing)."""
    path = state.results_dir() / "eval_published.csv"
    return eval_table(str(path), file_key(path)) if path.is_file() else pd.DataFrame()


def shipped_eval(protocol: str) -> pd.DataFrame:
    """The shipped evaluation table of ``protocol`` (``<assets>/results/eval_<protocol>.csv``; empty when missing)."""
    path = state.results_dir() / f"eval_{protocol}.csv"
    return eval_table(str(path), file_key(path)) if path.is_file() else pd.DataFrame()


@st.cache_data(show_spinner=False, max_entries=16, ttl=state.CACHE_TTL_S)
def run_logs(logs: tuple[tuple[str, str], ...], signature: str) -> pd.DataFrame:
    """Training logs ``(label, csv path)`` concatenated, with the label in a ``run`` column."""
    del signature
    frames = []
    for label, path in logs:
        try:
            frames.append(catalog.read_run_log(Path(path), label))
        except (OSError, ValueError, pd.errors.ParserError):
            continue
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@st.cache_data(show_spinner=False, ttl=state.CACHE_TTL_S)
def paper_results() -> pd.DataFrame:
    """The paper's results table, parsed from PAPER.md (empty when PAPER.md is not found)."""
    path = catalog.find_paper_markdown()
    if path is None:
        return pd.DataFrame(columns=["set", "scale", "arch", "loss", "psnr", "ssim"])
    return catalog.paper_table(path.read_text())


@st.cache_data(show_spinner=False, max_entries=16, ttl=state.CACHE_TTL_S)
def eval_table_any(path: str, mtime: float) -> pd.DataFrame:
    """Any CSV results table (e.g. ``lambda_sweep.csv``), read as is."""
    del mtime
    return pd.read_csv(path)


@st.cache_data(show_spinner="Writing the report…", max_entries=2)
def report_html(
    paths: tuple[str, ...],
    stamps: tuple[float, ...],
    data: str,
    scale: int,
    protocol: str,
    settings: tuple[str, int, tuple[str, ...] | None] = ("both", 12, None),
    sweep: tuple[str, ...] = (),
) -> bytes:
    """The ``gvcore report`` HTML (:func:`dashboard.report.build_report`) of these checkpoints, as bytes.

    ``settings`` = (direction, top-k, image names or ``None``); ``sweep``: λ-sweep checkpoints for the trade-off
    curve; cached by files and their mtimes ``stamps``.
    """
    from dashboard.report import build_report
    from gvcore.protocol import Protocol

    del stamps
    direction, top_k, images = settings
    parts = ["gvcore report", *(f"--ckpt {p}" for p in paths), *(f"--image {n}" for n in images or ())]
    parts += [f"--sweep {p}" for p in sweep]
    parts.append(
        f"--data {data} --scale {scale} --protocol {protocol} --top-k {top_k} --direction {direction}"
    )
    return build_report(
        list(paths),
        data,
        scale,
        Protocol.parse(protocol),
        top_k=top_k,
        direction=direction,  # type: ignore[arg-type]
        images=images,
        sweep=sweep,
        command=" ".join(parts),
    ).encode()
