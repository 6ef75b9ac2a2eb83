"""What the landing page shows for one (image, scale, protocol, L1 / L1+GV pair), computed once and kept small.

:func:`compute_view` runs the models once through :func:`gvcore.eval.scoring.score_image` (every number comes from the
one scoring path) and keeps only what the page draws: the metric table, the display PNGs, the patch-variance maps
(one value per 8x8 patch), the region where the L1 model lost the most variance with its crops, the signed
L1+GV - L1 difference, and, when the pair's architecture has a λ sweep, the sweep's metrics and crops of the same
region. :func:`to_entry` / :func:`from_entry` store it as plain arrays and JSON (:mod:`dashboard.precomputed`),
keyed by :func:`view_key` (the image's and checkpoints' contents, the scale and protocol). No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard import precomputed

__all__ = ["KIND", "REGION_PATCHES", "ObservationView", "compute_view", "from_entry", "to_entry", "view_key"]

KIND = "observation"
#: side of the worst region, in 8x8 patches (64 HR pixels)
REGION_PATCHES = 8
#: patch side of the variance maps (the paper's p = 8)
PATCH = 8

ModelLoader = Callable[[str], tuple[Any, dict[str, Any]]]


@dataclass
class ObservationView:
    """The landing page's data for one image, scale, protocol and pair (module docstring).

    ``methods`` lists HR, the protocol's baseline, then the L1 and L1+GV labels (those that exist);
    ``variance[m]`` is the mean of the Gx and Gy patch-variance maps, ``(h, w)`` float32; ``region`` is
    ``(top, left, side)`` in HR pixels with ``region_deficit`` the summed deficit HR - L1 there (``None`` without
    an L1 model); ``crops[m]`` its pixels; ``difference`` the signed L1+GV - L1 channel mean in 8-bit levels,
    display size (``None`` without a pair). ``sweep`` has one row per λ (``lambda``, ``method`` and the metrics)
    or is ``None``; ``sweep_crops`` / ``sweep_variance`` hold each λ output's crop and patch variances of the
    same region.
    """

    image: str
    scale: int
    protocol: str
    methods: list[str]
    l1: str | None
    gv: str | None
    metrics: pd.DataFrame
    size: tuple[int, int]
    display_factor: int
    png: dict[str, bytes]
    variance: dict[str, np.ndarray]
    region: tuple[int, int, int] | None = None
    region_deficit: float = 0.0
    crops: dict[str, np.ndarray] = field(default_factory=dict)
    difference: np.ndarray | None = None
    mean_abs_difference: float = 0.0
    sweep_arch: str | None = None
    sweep: pd.DataFrame | None = None
    sweep_crops: dict[str, np.ndarray] = field(default_factory=dict)
    sweep_variance: dict[str, np.ndarray] = field(default_factory=dict)


def view_key(image_path: str, scale: int, protocol: str, pair: Sequence[str], sweep: Sequence[str]) -> str:
    """The store key of a view: contents of the image and checkpoints, the scale and protocol."""
    inputs = {
        "image": precomputed.content_digest(image_path),
        "scale": int(scale),
        "protocol": protocol,
        "pair": [precomputed.content_digest(p) for p in pair],
        "sweep": [precomputed.content_digest(p) for p in sweep],
    }
    return precomputed.entry_key(KIND, inputs)


def _label(meta: dict[str, Any], path: str) -> str:
    return str(meta.get("label") or Path(path).stem)


def compute_view(
    image_path: str,
    scale: int,
    protocol: str,
    pair: Sequence[str],
    sweep: Sequence[str],
    load: ModelLoader,
    tile: int = 256,
    display_side: int = 768,
) -> ObservationView:
    """Run the pair (and the sweep) on one bundled image and keep what the landing page draws.

    Args:
        image_path: the HR image.
        scale: SR factor.
        protocol: ``"standard"`` or ``"official"``.
        pair: paths of the L1 and the L1+GV checkpoint, in that order, or none (HR and the baseline only).
        sweep: paths of the λ-sweep checkpoints of the pair's architecture (standard protocol only), any order.
        load: path -> ``(model, metadata)``.
        tile: inference tile (LR pixels).
        display_side: the display PNGs' largest side.
    """
    from dashboard import analysis
    from gvcore.eval.scoring import score_image
    from gvcore.io import load_image
    from gvcore.protocol import Protocol

    hr = load_image(image_path)
    models, names = {}, []
    for path in pair:
        model, meta = load(path)
        names.append(_label(meta, path))
        models[names[-1]] = model
    # the noise control (baseline + Gaussian noise) rides along: it shows what the variance ratio alone cannot tell
    scored = score_image(hr, scale, Protocol.parse(protocol), models, tile=tile, noise=True)
    outputs = {"HR": scored.hr, **scored.outputs}
    metrics = analysis.rows_frame(scored.rows)
    methods = [str(m) for m in metrics["method"]]
    images = {k: analysis.to_uint8(v) for k, v in outputs.items()}
    shown = {k: analysis.resize_for_display(v, display_side) for k, v in images.items()}
    settings = analysis.GradientSettings()
    variance = {
        k: analysis.compute_maps(v, settings).variance[0].astype(np.float32) for k, v in outputs.items()
    }
    height, width = (int(v) for v in scored.hr.shape[-2:])
    view = ObservationView(
        image=Path(image_path).stem,
        scale=int(scale),
        protocol=protocol,
        methods=methods,
        l1=names[0] if names else None,
        gv=names[1] if len(names) > 1 else None,
        metrics=metrics,
        size=(height, width),
        display_factor=max((f for _, f in shown.values()), default=1),
        png={k: analysis.png_bytes(v) for k, (v, _) in shown.items()},
        variance=variance,
    )
    if view.l1 is None:
        return view
    row, col, deficit = analysis.deficit_region(variance["HR"], variance[view.l1], REGION_PATCHES)
    side = min(REGION_PATCHES * PATCH, height, width)
    top, left = row * PATCH, col * PATCH
    view.region, view.region_deficit = (top, left, side), deficit
    view.crops = {k: v[top : top + side, left : left + side].copy() for k, v in images.items()}
    if view.gv is not None:
        a, b = outputs[view.gv], outputs[view.l1]
        signed = (a.float() - b.float()).mean(dim=1)[0].numpy() * 255.0
        factor = view.display_factor
        if factor > 1:
            signed = analysis.pool_for_display(signed, max(signed.shape) // factor)[0]
        view.difference = signed.astype(np.float16)
        view.mean_abs_difference = analysis.mean_abs_difference(a, b)
    if sweep and protocol == "standard":
        _add_sweep(view, hr, sweep, load, tile, view.region)
    return view


def _add_sweep(
    view: ObservationView,
    hr: Any,
    sweep: Sequence[str],
    load: ModelLoader,
    tile: int,
    region: tuple[int, int, int],
) -> None:
    from dashboard import analysis
    from gvcore.eval.scoring import score_image

    models, weights = {}, {}
    for path in sweep:
        model, meta = load(path)
        label = _label(meta, path)
        loss = meta.get("loss") or {}
        weights[label] = float(loss.get("gv_weight") or 0.0) if isinstance(loss, dict) else 0.0
        models[label] = model
        view.sweep_arch = str(meta.get("arch") or "")
    scored = score_image(hr, view.scale, "standard", models, tile=tile)
    frame = analysis.rows_frame([r for r in scored.rows if r["method"] in weights])
    frame.insert(1, "lambda", frame["method"].map(weights))
    view.sweep = frame.sort_values("lambda").reset_index(drop=True)
    top, left, side = region
    rows = slice(top // PATCH, (top + side) // PATCH)
    cols = slice(left // PATCH, (left + side) // PATCH)
    settings = analysis.GradientSettings()
    for label, output in scored.outputs.items():
        view.sweep_crops[label] = analysis.to_uint8(output)[top : top + side, left : left + side].copy()
        view.sweep_variance[label] = (
            analysis.compute_maps(output, settings).variance[0][rows, cols].astype(np.float32)
        )


def to_entry(view: ObservationView) -> precomputed.Entry:
    """A view as arrays and a JSON-able document (:mod:`dashboard.precomputed`)."""
    arrays: dict[str, np.ndarray] = {}
    for index, name in enumerate(view.methods):
        arrays[f"png/{index}"] = np.frombuffer(view.png[name], dtype=np.uint8)
        arrays[f"variance/{index}"] = view.variance[name]
        if name in view.crops:
            arrays[f"crop/{index}"] = view.crops[name]
    if view.difference is not None:
        arrays["difference"] = view.difference
    sweep_labels = list(view.sweep_crops)
    for index, label in enumerate(sweep_labels):
        arrays[f"sweep_crop/{index}"] = view.sweep_crops[label]
        arrays[f"sweep_variance/{index}"] = view.sweep_variance[label]
    meta = {
        "image": view.image,
        "scale": view.scale,
        "protocol": view.protocol,
        "methods": view.methods,
        "l1": view.l1,
        "gv": view.gv,
        "metrics": precomputed.frame_to_text(view.metrics),
        "size": list(view.size),
        "display_factor": view.display_factor,
        "region": list(view.region) if view.region else None,
        "region_deficit": view.region_deficit,
        "mean_abs_difference": view.mean_abs_difference,
        "sweep_arch": view.sweep_arch,
        "sweep": precomputed.frame_to_text(view.sweep) if view.sweep is not None else None,
        "sweep_labels": sweep_labels,
    }
    return arrays, meta


def from_entry(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ObservationView:
    """The :class:`ObservationView` that :func:`to_entry` stored."""
    methods = [str(m) for m in meta["methods"]]
    region = meta.get("region")
    metrics = precomputed.frame_from_text(meta["metrics"])
    metrics["method"] = metrics["method"].astype(str)
    sweep = precomputed.frame_from_text(meta["sweep"]) if meta.get("sweep") else None
    if sweep is not None:
        sweep["method"] = sweep["method"].astype(str)
    labels = [str(s) for s in meta.get("sweep_labels") or []]
    return ObservationView(
        image=str(meta["image"]),
        scale=int(meta["scale"]),
        protocol=str(meta["protocol"]),
        methods=methods,
        l1=meta.get("l1"),
        gv=meta.get("gv"),
        metrics=metrics,
        size=(int(meta["size"][0]), int(meta["size"][1])),
        display_factor=int(meta["display_factor"]),
        png={m: arrays[f"png/{i}"].tobytes() for i, m in enumerate(methods)},
        variance={m: arrays[f"variance/{i}"] for i, m in enumerate(methods)},
        region=(int(region[0]), int(region[1]), int(region[2])) if region else None,
        region_deficit=float(meta.get("region_deficit") or 0.0),
        crops={m: arrays[f"crop/{i}"] for i, m in enumerate(methods) if f"crop/{i}" in arrays},
        difference=arrays.get("difference"),
        mean_abs_difference=float(meta.get("mean_abs_difference") or 0.0),
        sweep_arch=meta.get("sweep_arch"),
        sweep=sweep,
        sweep_crops={label: arrays[f"sweep_crop/{i}"] for i, label in enumerate(labels)},
        sweep_variance={label: arrays[f"sweep_variance/{i}"] for i, label in enumerate(labels)},
    )
