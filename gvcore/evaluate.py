"""Evaluation: ``evaluate(checkpoints, data, scale, protocol) -> pandas.DataFrame``, under ``gvcore eval``.

For every test image the HR image is cropped to a multiple of the scale, its LR image made as the protocol says
(:func:`gvcore.data.make_lr`: MATLAB bicubic for ``"standard"``, antialiased bilinear for ``"official"``; DIV2K's
shipped LR images when present, standard protocol only), and scored for

- ``HR`` (the reference itself: ``gv_distance`` 0, PSNR/SSIM left empty),
- ``bicubic`` (:func:`gvcore.imresize` of the LR image back to HR size),
- every checkpoint (tiled inference, :func:`tiled_forward`).

Outputs are clamped to [0, 1] and, under the standard protocol, rounded to 8 bits before scoring (as saving a
PNG would); PSNR/SSIM follow :func:`gvcore.metrics.evaluate_pair`. ``gv_distance`` is
:func:`gvcore.gradient_variance_loss` (default settings) between output and HR; ``var_gx``/``var_gy`` are the
mean patch variances (p = 8, gray, Sobel) of the output's gradient maps. The table is tidy, one row per
(method, image) with the columns :data:`EVAL_COLUMNS`; :func:`summarize` gives the per-method means.

LR-only mode (``lr_only=True``): the images are LR inputs with no HR; rows get empty HR metrics and only the
output variances.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gvcore._validation import check_choice, check_positive_int
from gvcore.data import PROTOCOLS, ImagePair, Protocol, load_pairs, resolve_images

__all__ = [
    "EVAL_COLUMNS",
    "evaluate",
    "image_metrics",
    "output_variances",
    "summarize",
    "tiled_forward",
    "to_markdown",
    "validate",
    "write_csv",
]

#: columns of the evaluation table (docs/ARCHITECTURE.md, "Evaluation table").
EVAL_COLUMNS: tuple[str, ...] = (
    "method",
    "arch",
    "loss",
    "gv_weight",
    "seed",
    "scale",
    "protocol",
    "image",
    "psnr",
    "ssim",
    "gv_distance",
    "var_gx",
    "var_gy",
)

#: metrics averaged by :func:`summarize`, in display order.
METRIC_COLUMNS: tuple[str, ...] = ("psnr", "ssim", "gv_distance", "var_gx", "var_gy")


def tiled_forward(
    model: nn.Module, lr: torch.Tensor, scale: int, tile: int = 256, overlap: int = 16
) -> torch.Tensor:
    """Run ``model`` on ``lr`` tile by tile, so memory is bounded by the tile size.

    The LR image is cut into ``tile x tile`` cores; each is run with ``overlap`` LR pixels of real context on
    every side (clipped at the image border) and only its core is kept. For a fully convolutional model
    whose receptive-field radius is at most ``overlap`` LR pixels the result equals whole-image inference up
    to float rounding; an image no larger than one tile is run whole.

    Args:
        model: maps ``(B, C, h, w)`` to ``(B, C, scale*h, scale*w)``.
        lr: ``(B, C, h, w)`` input.
        scale: the model's scale.
        tile: core side in LR pixels.
        overlap: context in LR pixels on each side of a core.

    Returns:
        ``(B, C, scale*h, scale*w)`` output.
    """
    check_positive_int("tile", tile)
    check_positive_int("overlap", overlap, minimum=0)
    h, w = lr.shape[-2], lr.shape[-1]
    if h <= tile and w <= tile:
        return model(lr)
    out: torch.Tensor | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            iy0, ix0 = max(0, y0 - overlap), max(0, x0 - overlap)
            iy1, ix1 = min(h, y1 + overlap), min(w, x1 + overlap)
            piece = model(lr[..., iy0:iy1, ix0:ix1])
            if out is None:
                out = piece.new_empty((*piece.shape[:2], h * scale, w * scale))
            oy, ox = (y0 - iy0) * scale, (x0 - ix0) * scale
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = piece[
                ..., oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    if out is None:  # pragma: no cover - h, w >= 1
        raise ValueError("empty input")
    return out


def output_variances(x: torch.Tensor) -> tuple[float, float]:
    """Mean patch variance (p = 8, gray, Sobel) of the horizontal and vertical gradient maps of ``x``."""
    from gvcore.variance import variance_maps

    vx, vy = variance_maps(x, patch_size=8)
    return float(vx.mean()), float(vy.mean())


def image_metrics(out: torch.Tensor, hr: torch.Tensor, scale: int, protocol: Protocol) -> dict[str, float]:
    """PSNR, SSIM (protocol preset), GV distance and output variances of one scored output ``(1, 3, H, W)``."""
    from gvcore.loss import gradient_variance_loss
    from gvcore.metrics import evaluate_pair

    pm = evaluate_pair(out, hr, scale, protocol)
    var_gx, var_gy = output_variances(out)
    return {
        "psnr": float(pm.psnr[0]),
        "ssim": float(pm.ssim[0]),
        "gv_distance": float(gradient_variance_loss(out, hr)),
        "var_gx": var_gx,
        "var_gy": var_gy,
    }


def _score_ready(x: torch.Tensor, protocol: str) -> torch.Tensor:
    from gvcore.metrics import quantize_8bit

    x = x.float().clamp(0.0, 1.0)
    return quantize_8bit(x) if protocol == "standard" else x


@torch.no_grad()
def validate(
    model: nn.Module, pairs: Sequence[ImagePair], scale: int, device: torch.device
) -> dict[str, float]:
    """Cheap validation during training: mean PSNR/SSIM (standard protocol), GV distance and variance ratio.

    ``var_ratio`` is the mean over images of ``(var_gx(SR)/var_gx(HR) + var_gy(SR)/var_gy(HR)) / 2``.
    Returns ``{"psnr", "ssim", "gv", "var_ratio"}``; leaves ``model`` in eval mode.
    """
    model.eval()
    sums = {"psnr": 0.0, "ssim": 0.0, "gv": 0.0, "var_ratio": 0.0}
    for pair in pairs:
        lr, hr = (t.to(device) for t in pair.as_float())
        sr = _score_ready(model(lr), "standard")
        m = image_metrics(sr, hr, scale, "standard")
        hx, hy = output_variances(hr)
        ratio = 0.5 * (m["var_gx"] / hx if hx > 0 else 1.0) + 0.5 * (m["var_gy"] / hy if hy > 0 else 1.0)
        for key, value in (
            ("psnr", m["psnr"]),
            ("ssim", m["ssim"]),
            ("gv", m["gv_distance"]),
            ("var_ratio", ratio),
        ):
            sums[key] += value
    return {k: v / max(1, len(pairs)) for k, v in sums.items()}


def _unique_label(label: str, taken: set[str]) -> str:
    candidate, k = label, 2
    while candidate in taken:
        candidate, k = f"{label}#{k}", k + 1
    taken.add(candidate)
    return candidate


def _checkpoint_info(metadata: dict[str, Any], path: Path) -> dict[str, Any]:
    loss = metadata.get("loss") or {}
    if isinstance(loss, dict):
        recipe = loss.get("recipe") or "+".join(
            x for x in (loss.get("pixel"), "gv" if loss.get("gv_weight") else None) if x
        )
        gv_weight = float(loss.get("gv_weight") or 0.0)
    else:
        recipe, gv_weight = str(loss), math.nan
    seed = metadata.get("seed")
    return {
        "label": str(metadata.get("label") or path.stem),
        "arch": metadata.get("arch", ""),
        "loss": recipe,
        "gv_weight": gv_weight,
        "seed": int(seed) if seed not in (None, "") else None,
    }


def evaluate(
    checkpoints: Sequence[str | Path],
    data: str | Path,
    scale: int | None = None,
    protocol: Protocol = "standard",
    *,
    lr_only: bool = False,
    tile: int = 256,
    overlap: int = 16,
    device: str = "cpu",
    progress: bool = True,
) -> Any:
    """Score HR, bicubic and each checkpoint on every image of ``data``.

    Args:
        checkpoints: checkpoint files (:func:`gvcore.load_model`).
        data: ``"bundled"`` (its test split), a folder (or DIV2K layout), or an image file.
        scale: SR factor; ``None`` = the first checkpoint's. A checkpoint of another scale is an error.
        protocol: ``"standard"`` or ``"official"`` (module docstring).
        lr_only: the images are LR inputs without HR (HR metrics left empty, no ``HR`` rows).
        tile, overlap: tiled inference in LR pixels (:func:`tiled_forward`).
        device: where the models run.
        progress: show a progress bar.

    Returns:
        ``pandas.DataFrame`` with columns :data:`EVAL_COLUMNS`, one row per (method, image).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from gvcore.checkpoint import load_model
    from gvcore.io import load_image
    from gvcore.resize import imresize

    check_choice("protocol", protocol, PROTOCOLS)
    paths = [Path(p) for p in checkpoints]
    if scale is None:
        if not paths:
            raise ValueError("scale is required when no checkpoint is given")
        _, first = load_model(paths[0])
        scale = int(first["scale"])
    check_positive_int("scale", scale)
    models: list[tuple[nn.Module, dict[str, Any]]] = []
    taken = {"HR", "bicubic"}
    for path in paths:
        model, metadata = load_model(path, scale=scale, device=device)
        info = _checkpoint_info(metadata, path)
        info["label"] = _unique_label(info["label"], taken)
        models.append((model.eval(), info))
    sources = resolve_images(data, "test")
    base = {"scale": scale, "protocol": protocol}
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(sources) * (len(models) + 1), disable=not progress, desc=f"eval x{scale} {protocol}")
    with torch.no_grad():
        for source in sources:
            if lr_only:
                lr, hr = load_image(source.hr_path), None
            else:
                pair = load_pairs([source], scale, protocol)[0]
                lr, hr = pair.as_float()
                rows.append(
                    {**base, "method": "HR", "image": source.name, "gv_distance": 0.0}
                    | dict(zip(("var_gx", "var_gy"), output_variances(hr)))
                )
            lr_device = lr.to(device)
            methods: list[tuple[str, dict[str, Any], nn.Module | None]] = [("bicubic", {}, None)]
            methods += [(info["label"], info, model) for model, info in models]
            for label, info, net in methods:
                raw = (
                    imresize(lr_device, scale)
                    if net is None
                    else tiled_forward(net, lr_device, scale, tile, overlap)
                )
                out = _score_ready(raw, protocol).cpu()
                row: dict[str, Any] = {**base, "method": label, "image": source.name}
                row.update({k: info[k] for k in ("arch", "loss", "gv_weight", "seed") if k in info})
                if hr is None:
                    row.update(dict(zip(("var_gx", "var_gy"), output_variances(out))))
                else:
                    row.update(image_metrics(out, hr, scale, protocol))
                rows.append(row)
                bar.update(1)
    bar.close()
    frame = pd.DataFrame(rows, columns=list(EVAL_COLUMNS))
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def summarize(frame: Any) -> Any:
    """Mean of each metric per (method, scale, protocol), methods in order of first appearance."""
    keys = ["method", "arch", "loss", "gv_weight", "seed", "scale", "protocol"]
    grouped = frame.groupby(keys, sort=False, dropna=False)[list(METRIC_COLUMNS)].mean()
    grouped.insert(0, "images", frame.groupby(keys, sort=False, dropna=False).size())
    return grouped.reset_index()


def to_markdown(summary: Any, columns: Sequence[str] = ("method", "images", *METRIC_COLUMNS)) -> str:
    """A GitHub Markdown table of ``summary`` (no dependency on ``tabulate``); empty cells for NaN."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return ""
            return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in summary[list(columns)].itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in record) + " |")
    return "\n".join(lines)


def write_csv(frame: Any, path: str | Path) -> Path:
    """Write an evaluation table atomically (temp file + rename); floats with full precision."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        frame.to_csv(tmp, index=False, float_format="%.10g")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
