"""Evaluation: ``evaluate(checkpoints, data, scale, protocol) -> pandas.DataFrame``, under ``gvcore eval``.

Every image goes through :func:`gvcore.eval.scoring.score_image`, the one scoring path (LR synthesis, baseline,
8-bit policy and metrics per protocol; DIV2K's shipped LR images are used as they are under the standard
protocol). The table is tidy, one row per (method, image) with the columns :data:`EVAL_COLUMNS`:

- ``HR`` (the reference itself: ``gv_distance`` 0, ``var_ratio`` 1, PSNR/SSIM left empty),
- the protocol's interpolation baseline (``bicubic`` for ``"standard"``, ``bilinear`` for ``"official"``),
- every checkpoint (tiled inference, :func:`gvcore.eval.inference.tiled_forward`); a snapshot folder gives one per
  checkpoint, labelled ``<run>@<iteration>`` (:mod:`gvcore.data.snapshots`).

``lr_source`` says whether a row's LR input was a given file (:mod:`gvcore.data.layouts` layouts, ``lr_dir``) or
synthesised; ``iteration`` is a snapshot's training iteration. With ``cache=``, per-image rows are stored in and
read back from a results database (:mod:`gvcore.eval.results_db`) instead of being recomputed.

:func:`summarize` gives the per-method means. LR-only mode (``lr_only=True``): the images are LR inputs with no
HR; rows get empty HR metrics and only the output variances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import gvcore
from gvcore._validation import check_positive_int
from gvcore.atomic import atomic_write
from gvcore.checkpoint.meta import BLIND_DEGRADATION, CheckpointMeta
from gvcore.checkpoint.store import load_model, read_checkpoint_bytes
from gvcore.data.layouts import ImageSource, paired_sources
from gvcore.data.snapshots import CheckpointEntry, expand_checkpoints
from gvcore.data.sources import ImagePair, given_lr_path, load_pair_from_bytes, load_pairs, resolve_images
from gvcore.eval.inference import tiled_forward
from gvcore.eval.lpips import lpips_metrics
from gvcore.eval.results_db import ResultsDB, bytes_hash, result_key
from gvcore.eval.scoring import (
    NOISE_CONTROL_SIGMA,
    SCORE_COLUMNS,
    NonFiniteOutputError,
    run_model,
    score_image,
    score_outputs,
)
from gvcore.io import ImageNotFoundError, load_image
from gvcore.protocol import Protocol, ProtocolLike, score_ready, upscale_baseline

__all__ = [
    "EVAL_COLUMNS",
    "ScoringModel",
    "evaluate",
    "load_for_scoring",
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
    *SCORE_COLUMNS,
    "lr_source",
    "iteration",
)

#: metrics averaged by :func:`summarize`, in display order.
METRIC_COLUMNS: tuple[str, ...] = SCORE_COLUMNS


@torch.no_grad()
def validate(
    model: nn.Module,
    pairs: Sequence[ImagePair],
    scale: int,
    device: torch.device,
    protocol: ProtocolLike = "standard",
) -> dict[str, float]:
    """Cheap validation during training: means over ``pairs`` of PSNR, SSIM, GV distance and variance ratio.

    Scored by :func:`gvcore.eval.scoring.score_outputs` under ``protocol`` (the run's degradation), like
    ``gvcore eval``. Returns ``{"psnr", "ssim", "gv", "var_ratio"}``; leaves ``model`` in eval mode.
    """
    model.eval()
    protocol = Protocol.parse(protocol)
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

    record = CheckpointMeta.from_dict(metadata, default_label=path.stem)
    return {
        "label": str(record.label),
        "arch": record.arch,
        "loss": record.recipe,
        "gv_weight": record.gv_weight,
        "seed": record.seed,
    }


@dataclass
class ScoringModel:
    """A checkpoint loaded for scoring: the model (eval mode), its table fields, its file, and its file's hash.

    ``info`` holds ``label`` (unique among the models loaded together and the baselines), ``arch``, ``loss``,
    ``gv_weight``, ``seed`` and ``iteration``: the checkpoint columns of :data:`EVAL_COLUMNS`. ``digest`` is
    the SHA-256 of the bytes ``model`` was built from (read once; the file at ``path`` may have changed since),
    the checkpoint part of a results key.
    """

    model: nn.Module
    info: dict[str, Any]
    path: Path
    digest: str = ""


def load_for_scoring(
    entries: Sequence[CheckpointEntry | str | Path],
    scale: int,
    protocol: Protocol,
    *,
    lr_only: bool = False,
    device: str = "cpu",
    errors: list[str] | None = None,
) -> list[ScoringModel]:
    """Load checkpoints as :func:`evaluate` scores them: labelled uniquely, each checked against ``protocol``.

    The one loader behind ``gvcore eval``, the atlas and the report, so a checkpoint gets the same label and
    the same refusals everywhere.

    Args:
        entries: checkpoint files, or :class:`~gvcore.data.snapshots.CheckpointEntry` (a snapshot series labels its
            models ``series@iteration``).
        scale: the scale every checkpoint must have.
        protocol: a checkpoint trained on another degradation is refused (unless ``lr_only``: no HR is made);
            one trained on a blind degradation (``"blind"``, e.g. Real-ESRGAN) is accepted under either.
        lr_only: the inputs are given LR images.
        device: where the models go.
        errors: when given, a checkpoint that cannot be used is recorded here (``path: reason``) and skipped;
            otherwise its error is raised.

    Raises:
        ValueError: another scale or another degradation (:class:`gvcore.CheckpointError` is a ValueError).
        OSError: an unreadable file.
    """
    models: list[ScoringModel] = []
    taken = {"HR", *(p.baseline for p in Protocol)}
    for raw in entries:
        entry = raw if isinstance(raw, CheckpointEntry) else CheckpointEntry(Path(raw))
        try:
            content = read_checkpoint_bytes(
                entry.path
            )  # read once: the model and its digest share these bytes
            model, metadata = load_model(entry.path, scale=scale, device=device, content=content)
            degradation = metadata.get("degradation")
            # a blind-degradation model (gvcore.zoo.registry: Real-ESRGAN) has no protocol of its own: scored under either
            if degradation and degradation not in (protocol, BLIND_DEGRADATION) and not lr_only:
                raise ValueError(
                    f"{entry.path} was trained on {degradation!r} LR images; scoring it under protocol="
                    f"{protocol!r} would feed it another degradation (use --protocol {degradation}, or a model "
                    f"trained with `gvcore train --protocol {protocol}`)"
                )
        except (ValueError, OSError) as err:
            if errors is None:
                raise
            errors.append(f"{entry.path}: {' '.join(str(err).split())}")
            continue
        info = _checkpoint_info(metadata, entry.path)
        if entry.series is not None:
            info["label"] = (
                f"{entry.series}@{entry.iteration if entry.iteration is not None else entry.path.stem}"
            )
        info["label"] = _unique_label(info["label"], taken)
        info["iteration"] = entry.iteration
        models.append(ScoringModel(model.eval(), info, entry.path, bytes_hash(content)))
    return models


def _first_scale(entries: Sequence[CheckpointEntry], errors: list[str] | None) -> int:

    for entry in entries:
        try:
            return int(load_model(entry.path)[1]["scale"])
        except (ValueError, OSError):
            if errors is None:
                raise
    raise ValueError(
        "scale is required when no checkpoint is given" if not entries else "no checkpoint loads"
    )


def evaluate(
    checkpoints: Sequence[str | Path],
    data: str | Path,
    scale: int | None = None,
    protocol: ProtocolLike = "standard",
    *,
    lr_only: bool = False,
    lr_dir: str | Path | None = None,
    tile: int = 256,
    overlap: int = 16,
    device: str = "cpu",
    progress: bool = True,
    cache: str | Path | None = None,
    errors: list[str] | None = None,
    tile_batch: int | None = None,
    lpips: bool | None = None,
    noise: bool = False,
) -> Any:
    """Score HR, the baseline and each checkpoint on every image of ``data``.

    Args:
        checkpoints: checkpoint files (:func:`gvcore.load_model`) or snapshot folders
            (:func:`gvcore.data.snapshots.expand_checkpoints`: every checkpoint, labelled ``series@iteration``).
        data: ``"bundled"`` (its test split), a folder in any layout of :mod:`gvcore.data.layouts`, or an image
            file; with ``lr_dir``, the HR folder.
        scale: SR factor; ``None`` = the first checkpoint's. A checkpoint of another scale is an error.
        protocol: ``"standard"`` or ``"official"`` (module docstring).
        lr_only: the images are LR inputs without HR (HR metrics left empty, no ``HR`` rows).
        lr_dir: LR files paired with ``data``'s HR files by stem (:func:`gvcore.data.layouts.paired_sources`),
            used as they are under either protocol.
        tile: tile side of the tiled inference, in LR pixels (:func:`tiled_forward`).
        overlap: overlap of the tiles, in LR pixels.
        device: where the models run.
        progress: show a progress bar.
        cache: a results database (:mod:`gvcore.eval.results_db`): rows found there are not recomputed, new rows
            are stored. Not used with ``lr_only``.
        errors: when a list, a checkpoint that does not load or outputs NaN/inf is reported there (one line
            each) and left out of the table; when ``None``, it raises.
        tile_batch: tiles per forward call (``None`` = 1 on CPU, several on CUDA; same numbers on CPU).
        lpips: an ``lpips`` column (:mod:`gvcore.eval.lpips`): ``None`` = when its weights are on this machine (else
            ``frame.attrs["notes"]`` says how to enable it), ``True`` = required, ``False`` = never.
        noise: also score the ``<baseline>+noise`` control row (:func:`gvcore.eval.scoring.noise_control`), which
            shows that noise alone raises the variance ratio.

    Returns:
        ``pandas.DataFrame`` with columns :data:`EVAL_COLUMNS`, one row per (method, image).

    Raises:
        ValueError: bad data or checkpoint (with ``errors=None``), an LR file of the wrong size (naming it).
        gvcore.eval.scoring.NonFiniteOutputError: a model output NaN or inf (with ``errors=None``).
    """
    import pandas as pd

    protocol = Protocol.parse(protocol)
    entries = expand_checkpoints(checkpoints)
    if scale is None:
        scale = _first_scale(entries, errors)
    check_positive_int("scale", scale)
    models = load_for_scoring(entries, scale, protocol, lr_only=lr_only, device=device, errors=errors)

    extra, note = lpips_metrics() if lpips is not False and not lr_only else ({}, "")
    if lpips and not extra:
        raise ValueError(note or "LPIPS needs HR images (not --lr-only)")
    if lr_dir is not None:
        sources = paired_sources(data, lr_dir, scale)
    else:
        sources = resolve_images(data, "test")
    job = _Job(
        scale, protocol, tile, overlap, device, str(data), models, tile_batch, extra, noise and not lr_only
    )
    if cache is not None and not lr_only:
        with ResultsDB(cache) as db:
            rows = _score_sources(job, sources, progress, errors, db)
    else:
        rows = _score_sources(job, sources, progress, errors, None, lr_only=lr_only)
    frame = pd.DataFrame(rows, columns=[*EVAL_COLUMNS, *extra])
    frame["seed"] = frame["seed"].astype("Int64")
    frame["iteration"] = frame["iteration"].astype("Int64")
    frame.attrs["notes"] = [note] if note and not extra else []
    return frame


@dataclass
class _Job:
    """What one evaluation scores with: the settings and the loaded models."""

    scale: int
    protocol: Protocol
    tile: int
    overlap: int
    device: str
    data: str
    models: list[ScoringModel]
    tile_batch: int | None = None
    #: optional metrics beyond SCORE_COLUMNS (name -> function, :func:`gvcore.eval.lpips.lpips_metrics`)
    extra: dict[str, Any] = field(default_factory=dict)
    #: score the noise control row too (:func:`gvcore.eval.scoring.noise_control`)
    noise: bool = False

    @property
    def builtin(self) -> tuple[str, ...]:
        """The rows every image gets before the models: HR, the baseline, and the noise control if asked for."""
        baseline = Protocol.parse(self.protocol).baseline
        return ("HR", baseline, f"{baseline}+noise") if self.noise else ("HR", baseline)

    def settings(self) -> dict[str, Any]:
        """The settings that change a result (part of the cache key), optional metrics included."""
        settings: dict[str, Any] = {"tile": self.tile, "overlap": self.overlap, "device": self.device}
        settings["columns"] = list(SCORE_COLUMNS)  # a row stored before a metric was added is not reused
        if self.tile_batch not in (None, 1):
            settings["tile_batch"] = self.tile_batch  # float32 results differ in the last bits
        if self.extra:
            settings["extra"] = sorted(self.extra)
        return settings


def _score_sources(
    job: _Job,
    sources: Sequence[ImageSource],
    progress: bool,
    errors: list[str] | None,
    db: Any,
    *,
    lr_only: bool = False,
) -> list[dict[str, Any]]:
    """Rows of every image; a model that fails on an image is dropped from the whole table (``errors``)."""
    from tqdm.auto import tqdm

    failed: set[str] = set()
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(sources), disable=not progress, desc=f"eval x{job.scale} {job.protocol}")
    for source in sources:
        if lr_only:
            labelled = {m.info["label"]: m.model for m in job.models}
            scored = _lr_only_rows(
                load_image(source.hr_path), labelled, job.scale, job.tile, job.overlap, job.tile_batch
            )
            scored = [r | {"lr_source": "file"} for r in scored]
        else:
            scored = _score_source(job, source, db, failed, errors)
        infos = {m.info["label"]: m.info for m in job.models}
        rows.extend(_full_row(job, source, row, infos.get(row["method"], {})) for row in scored)
        bar.update(1)
    bar.close()
    return [row for row in rows if row["method"] not in failed]


def _score_source(
    job: _Job, source: ImageSource, db: Any, failed: set[str], errors: list[str] | None
) -> list[dict[str, Any]]:
    """Rows of one image: read back from ``db`` where present, else scored (and stored)."""
    inputs = _read_inputs(job, source) if db is not None else None
    keys = _cache_keys(job, *inputs) if inputs is not None else {}
    valid = {"numbers": (*SCORE_COLUMNS, *job.extra), "texts": ("lr_source",)}  # what _from_cache reads
    cached = db.get_many(keys.values(), **valid) if db is not None else {}
    wanted = [m.info["label"] for m in job.models if m.info["label"] not in failed]
    builtin = job.builtin
    missing = [label for label in wanted if keys.get(label) not in cached]
    if db is not None and not missing and all(keys[name] in cached for name in builtin):
        return [_from_cache(cached[keys[label]], label, job.extra) for label in (*builtin, *wanted)]
    fresh = _fresh_rows(job, source, inputs, db, keys, missing, failed, errors)
    return [
        fresh[label] if label in fresh else _from_cache(cached[keys[label]], label, job.extra)
        for label in (*builtin, *wanted)
        if label not in failed
    ]


def _fresh_rows(
    job: _Job,
    source: ImageSource,
    inputs: tuple[bytes, bytes | None] | None,
    db: Any,
    keys: dict[str, str],
    missing: list[str],
    failed: set[str],
    errors: list[str] | None,
) -> dict[str, dict[str, Any]]:
    """Score one image (the built-in rows and the ``missing`` models), store the rows in ``db``; by method."""
    if inputs is not None:  # decoded from the very bytes the keys hash
        pair = load_pair_from_bytes(source, *inputs, job.scale, job.protocol)
    else:
        pair = load_pairs([source], job.scale, job.protocol)[0]
    by_label = {m.info["label"]: m for m in job.models}
    scored = _score_finite(job, source, pair, missing, by_label, failed, errors)
    fresh = {
        r["method"]: r | {"lr_source": pair.lr_source if r["method"] != "HR" else ""} for r in scored.rows
    }
    if db is not None:
        _store_rows(db, job, source, keys, fresh, by_label)
    return fresh


def _score_finite(
    job: _Job,
    source: ImageSource,
    pair: ImagePair,
    missing: list[str],
    by_label: dict[str, ScoringModel],
    failed: set[str],
    errors: list[str] | None,
) -> Any:
    """Score the ``missing`` models on one image; a model whose output is not finite is named and dropped.

    With ``errors`` (several checkpoints) the failure is appended there, the model added to ``failed`` and the
    image scored again without it; without, :class:`~gvcore.eval.scoring.NonFiniteOutputError` is raised.
    """
    lr, hr = pair.as_float()
    while True:
        labelled = {label: by_label[label].model for label in missing if label not in failed}
        try:
            return score_image(
                hr,
                job.scale,
                job.protocol,
                labelled,
                lr=lr,
                tile=job.tile,
                overlap=job.overlap,
                tile_batch=job.tile_batch,
                extra=job.extra,
                noise=job.noise,
            )
        except NonFiniteOutputError as err:
            if errors is None:
                raise NonFiniteOutputError(err.label, f"{err} on image {source.hr_path}") from err
            errors.append(f"{by_label[err.label].path}: {err} on image {source.hr_path}")
            failed.add(err.label)


def _store_rows(
    db: Any,
    job: _Job,
    source: ImageSource,
    keys: dict[str, str],
    fresh: dict[str, dict[str, Any]],
    by_label: dict[str, ScoringModel],
) -> None:
    """Store one image's freshly scored rows in the results database, each under its content key."""
    db.put_many(
        (
            keys[name],
            _record_fields(job, source, by_label[name].path if name in by_label else None),
            _full_row(job, source, row, by_label[name].info if name in by_label else {}),
        )
        for name, row in fresh.items()
    )


#: largest image file read into memory to be hashed and decoded from the same bytes (results cache)
MAX_IMAGE_BYTES = 1024**3


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, read once through one handle, at most :data:`MAX_IMAGE_BYTES`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as err:
        raise ImageNotFoundError(f"cannot read file ({err.strerror or err})", str(path)) from err
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image {path} is over {MAX_IMAGE_BYTES} bytes; refused for the results cache")
    return data


def _read_inputs(job: _Job, source: ImageSource) -> tuple[bytes, bytes | None]:
    """The HR bytes and the given LR file's bytes (``None``: synthesised): hashed for keys, then decoded."""
    lr_path = given_lr_path(source, job.scale, job.protocol)
    return _read_bytes(source.hr_path), _read_bytes(lr_path) if lr_path is not None else None


def _cache_keys(job: _Job, hr_data: bytes, lr_data: bytes | None) -> dict[str, str]:
    """Content key of each row of one image (:mod:`gvcore.eval.results_db`), by method label."""
    common = {
        "hr_hash": bytes_hash(hr_data),
        "lr_hash": bytes_hash(lr_data) if lr_data is not None else "synth",
        "protocol": job.protocol,
        "scale": job.scale,
        "settings": job.settings(),
        "gvcore_version": gvcore.__version__,
    }
    keys = {name: result_key(common | {"checkpoint_hash": "", "row": name}) for name in ("HR", "baseline")}
    keys[Protocol.parse(job.protocol).baseline] = keys.pop("baseline")
    if job.noise:
        noise_key = {"checkpoint_hash": "", "row": "noise", "sigma": NOISE_CONTROL_SIGMA}
        keys[job.builtin[2]] = result_key(common | noise_key)
    for m in job.models:
        keys[m.info["label"]] = result_key(common | {"checkpoint_hash": m.digest, "row": "model"})
    return keys


def _record_fields(job: _Job, source: ImageSource, checkpoint: Path | None) -> dict[str, Any]:

    return {
        "protocol": job.protocol,
        "scale": job.scale,
        "settings": job.settings(),
        "gvcore_version": gvcore.__version__,
        "checkpoint": str(checkpoint) if checkpoint is not None else "",
        "data": job.data,
        "image": source.name,
    }


def _full_row(job: _Job, source: ImageSource, scored: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A table row (:data:`EVAL_COLUMNS`) of one scored output."""
    row: dict[str, Any] = {"scale": job.scale, "protocol": job.protocol, "image": source.name, **scored}
    row.update({k: info[k] for k in ("arch", "loss", "gv_weight", "seed", "iteration") if k in info})
    return row


def _from_cache(stored: dict[str, Any], label: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A stored row under the current label: the metrics and the LR source as they were computed."""
    return {"method": label, **{k: stored[k] for k in (*SCORE_COLUMNS, *extra, "lr_source")}}


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
    outputs = {"bicubic": upscale_baseline(lr, scale, Protocol.STANDARD)}
    for label, model in models.items():
        raw = run_model(model, lr, scale, tile, overlap, tile_batch)
        if not bool(torch.isfinite(raw).all()):
            raise NonFiniteOutputError(
                label, f"model {label!r} produced non-finite output value(s) (NaN/inf)"
            )
        outputs[label] = score_ready(raw, Protocol.STANDARD)
    return score_outputs(outputs, None, scale, Protocol.STANDARD)


def summarize(frame: Any) -> Any:
    """Mean of each metric per (method, scale, protocol), methods in order of first appearance."""
    keys = ["method", "arch", "loss", "gv_weight", "seed", "scale", "protocol"]
    keys += [k for k in ("iteration",) if k in frame]
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
    return atomic_write(path, frame.to_csv(index=False, float_format="%.10g").encode())
