"""Evaluation: ``evaluate(checkpoints, data, scale, protocol) -> pandas.DataFrame``, under ``gvcore eval``.

Every image goes through :func:`gvcore.scoring.score_image`, the one scoring path (LR synthesis, baseline,
8-bit policy and metrics per protocol; DIV2K's shipped LR images are used as they are under the standard
protocol). The table is tidy, one row per (method, image) with the columns :data:`EVAL_COLUMNS`:

- ``HR`` (the reference itself: ``gv_distance`` 0, ``var_ratio`` 1, PSNR/SSIM left empty),
- the protocol's interpolation baseline (``bicubic`` for ``"standard"``, ``bilinear`` for ``"official"``),
- every checkpoint (tiled inference, :func:`gvcore.inference.tiled_forward`).

:func:`summarize` gives the per-method means. LR-only mode (``lr_only=True``): the images are LR inputs with no
HR; rows get empty HR metrics and only the output variances.
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
from gvcore.inference import tiled_forward
from gvcore.scoring import SCORE_COLUMNS, score_image, score_outputs, score_ready

__all__ = [
    "EVAL_COLUMNS",
    "evaluate",
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
    "var_ratio",
)

#: metrics averaged by :func:`summarize`, in display order.
METRIC_COLUMNS: tuple[str, ...] = SCORE_COLUMNS


@torch.no_grad()
def validate(
    model: nn.Module,
    pairs: Sequence[ImagePair],
    scale: int,
    device: torch.device,
    protocol: Protocol = "standard",
) -> dict[str, float]:
    """Cheap validation during training: means over ``pairs`` of PSNR, SSIM, GV distance and variance ratio.

    Scored by :func:`gvcore.scoring.score_outputs` under ``protocol`` (the run's degradation), like
    ``gvcore eval``. Returns ``{"psnr", "ssim", "gv", "var_ratio"}``; leaves ``model`` in eval mode.
    """
    model.eval()
    sums = {"psnr": 0.0, "ssim": 0.0, "gv": 0.0, "var_ratio": 0.0}
    for pair in pairs:
        lr, hr = (t.to(device) for t in pair.as_float())
        sr = score_ready(model(lr), protocol).cpu()
        row = score_outputs({"model": sr}, hr.cpu(), scale, protocol)[0]
        for key, column in (
            ("psnr", "psnr"),
            ("ssim", "ssim"),
            ("gv", "gv_distance"),
            ("var_ratio", "var_ratio"),
        ):
            sums[key] += row[column]
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
    tile_batch: int | None = None,
    lpips: bool | None = None,
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
        tile_batch: tiles per forward call (``None`` = 1 on CPU, several on CUDA; same numbers on CPU).
        lpips: an ``lpips`` column (:mod:`gvcore.lpips`): ``None`` = when its weights are on this machine (else
            ``frame.attrs["notes"]`` says how to enable it), ``True`` = required, ``False`` = never.

    Returns:
        ``pandas.DataFrame`` with columns :data:`EVAL_COLUMNS`, one row per (method, image).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from gvcore.checkpoint import load_model
    from gvcore.io import load_image

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
        degradation = metadata.get("degradation")
        if degradation and degradation != protocol and not lr_only:
            raise ValueError(
                f"{path} was trained on {degradation!r} LR images; scoring it under protocol={protocol!r} would "
                f"feed it another degradation (use --protocol {degradation}, or a model trained with "
                f"`gvcore train --protocol {protocol}`)"
            )
        info = _checkpoint_info(metadata, path)
        info["label"] = _unique_label(info["label"], taken)
        models.append((model.eval(), info))
    from gvcore.lpips import lpips_metrics

    extra, note = lpips_metrics() if lpips is not False and not lr_only else ({}, "")
    if lpips and not extra:
        raise ValueError(note or "LPIPS needs HR images (not --lr-only)")
    sources = resolve_images(data, "test")
    base = {"scale": scale, "protocol": protocol}
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(sources) * (len(models) + 1), disable=not progress, desc=f"eval x{scale} {protocol}")
    labelled = {info["label"]: model for model, info in models}
    infos = {info["label"]: info for _, info in models}
    for source in sources:
        if lr_only:
            out_rows = _lr_only_rows(load_image(source.hr_path), labelled, scale, tile, overlap, tile_batch)
        else:
            pair = load_pairs([source], scale, protocol)[0]
            lr, hr = pair.as_float()
            out_rows = score_image(
                hr,
                scale,
                protocol,
                labelled,
                lr=lr,
                tile=tile,
                overlap=overlap,
                tile_batch=tile_batch,
                extra=extra,
            ).rows
        for scored in out_rows:
            info = infos.get(scored["method"], {})
            row: dict[str, Any] = {**base, "image": source.name, **scored}
            row.update({k: info[k] for k in ("arch", "loss", "gv_weight", "seed") if k in info})
            rows.append(row)
        bar.update(len(models) + 1)
    bar.close()
    frame = pd.DataFrame(rows, columns=[*EVAL_COLUMNS, *extra])
    frame["seed"] = frame["seed"].astype("Int64")
    frame.attrs["notes"] = [note] if note and not extra else []
    return frame


@torch.no_grad()
def _lr_only_rows(
    lr: torch.Tensor,
    models: dict[str, nn.Module],
    scale: int,
    tile: int,
    overlap: int,
    tile_batch: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of LR-only inputs: the output variances of the bicubic baseline and each model (no reference)."""
    from gvcore.data import upscale_baseline
    from gvcore.scoring import run_model

    outputs = {"bicubic": upscale_baseline(lr, scale, "standard")}
    outputs |= {
        k: score_ready(run_model(m, lr, scale, tile, overlap, tile_batch), "standard")
        for k, m in models.items()
    }
    return score_outputs(outputs, None, scale, "standard")


def summarize(frame: Any) -> Any:
    """Mean of each metric per (method, scale, protocol), methods in order of first appearance."""
    keys = ["method", "arch", "loss", "gv_weight", "seed", "scale", "protocol"]
    metrics = [*METRIC_COLUMNS, *(c for c in frame.columns if c not in EVAL_COLUMNS)]  # + optional (lpips)
    grouped = frame.groupby(keys, sort=False, dropna=False)[metrics].mean()
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
