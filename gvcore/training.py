"""Training: ``train(TrainConfig) -> RunResult``, the library function under ``gvcore train``.

A run directory holds ``config.json`` (the resolved config, written atomically at start), ``log.csv`` (one row
per log step, appended and flushed), ``last.safetensors`` (latest weights, :func:`gvcore.save_checkpoint`) and
``resume.pt`` (model, optimizer, scaler, step, RNG states and log-window sums; tensors and plain containers
only, read back with ``torch.load(weights_only=True)``). Checkpoint and resume state are written every
``ckpt_every`` steps and at the end, each atomically (temp file + rename), so a run killed at any point
(SIGKILL included) continues from its last resume state with ``resume=True``; on CPU it reaches bit-identical
weights to an uninterrupted run, because the data stream is a pure function of the step (:mod:`gvcore.data`),
the learning rate a pure function of the step, and every RNG state is restored.

Recipes (``optimizer="auto"``):

- VDSR (``vdsr``, ``vdsr-lite``) -- the official GV recipe: SGD lr 0.1, momentum 0.9, weight decay 1e-4,
  learning rate x0.1 at 1/3 and 2/3 of the run (the official epochs 10 and 20 of 30, scaled to ``steps``),
  gradient-norm clip 0.4 (PAPER.md).
- EDSR, ESPCN -- Adam (0.9, 0.999), lr 5e-4, cosine decay to 0 over ``steps`` (short runs on CPU).

Under ``torchrun --nproc_per_node=N`` the same call trains with DistributedDataParallel (gloo on CPU, nccl on
CUDA): every step's global batch of ``batch_size`` samples is split across the processes (see
:class:`gvcore.data.StepBatchSampler`), and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gvcore._validation import check_choice, check_positive_int
from gvcore.data import (
    PROTOCOLS,
    ImagePair,
    PatchDataset,
    Protocol,
    StepBatchSampler,
    center_crop_pair,
    load_pairs,
    resolve_images,
    seed_worker,
)
from gvcore.runstate import (
    CsvLog,
    atomic_write_bytes,
    atomic_write_text,
    prepare_run_dir,
    rng_state,
    run_lock,
    set_rng_state,
    truncate_log,
)

__all__ = [
    "DEFAULT_GV_WEIGHT",
    "LOG_COLUMNS",
    "LOSS_TERMS",
    "LossTerm",
    "RunResult",
    "SimulatedKill",
    "TrainConfig",
    "lr_factor",
    "make_optimizer",
    "parse_loss",
    "resolve_config",
    "train",
    "train_step",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: ``log.csv`` columns (docs/ARCHITECTURE.md, "Run directory").
LOG_COLUMNS: tuple[str, ...] = (
    "step",
    "epoch",
    "lr",
    "loss",
    "loss_pixel",
    "loss_gv",
    "elapsed_s",
    "val_psnr",
    "val_ssim",
    "val_gv",
    "val_var_ratio",
)

#: Default lambda per pixel loss. MSE: the official 0.01. L1: 0.03, the value the bundled lambda sweep supports
#: (``assets/results/lambda_sweep.csv``, :func:`gvcore.reproduce.choose_lambda`): the most gradient variance
#: restored among the lambdas that cost under 0.05 dB PSNR; 0.1 already costs 0.12 dB, 1.0 costs 0.42 dB.
DEFAULT_GV_WEIGHT: dict[str, float] = {"mse": 0.01, "l1": 0.03}


@dataclass(frozen=True)
class LossTerm:
    """One term of the objective: ``weight * fn(sr, hr)``, logged under ``loss_{column}`` (unweighted)."""

    name: str
    weight: float
    fn: LossFn
    column: Literal["pixel", "gv"]


def _gv_term(options: dict[str, Any]) -> LossTerm:
    from gvcore.loss import GradientVarianceLoss

    fn = GradientVarianceLoss(patch_size=options["gv_patch_size"], distance=options["gv_distance"])
    return LossTerm("gv", float(options["gv_weight"]), fn, "gv")


#: loss-term name -> constructor from the loss options (``gv_weight``, ``gv_patch_size``, ``gv_distance``).
#: Adding a loss means adding an entry here; the trainer only sums ``weight * fn(sr, hr)`` over the terms.
LOSS_TERMS: dict[str, Callable[[dict[str, Any]], LossTerm]] = {
    "l1": lambda options: LossTerm("l1", 1.0, F.l1_loss, "pixel"),
    "mse": lambda options: LossTerm("mse", 1.0, F.mse_loss, "pixel"),
    "gv": _gv_term,
}


def parse_loss(
    recipe: str,
    gv_weight: float | None = None,
    gv_patch_size: int = 8,
    gv_distance: str = "mse",
) -> list[LossTerm]:
    """Turn a recipe such as ``"l1+gv"`` into its loss terms.

    Args:
        recipe: ``+``-joined names of :data:`LOSS_TERMS` (``l1``, ``mse``, ``l1+gv``, ``mse+gv``, ...).
        gv_weight: lambda; ``None`` = :data:`DEFAULT_GV_WEIGHT` of the recipe's pixel loss.
        gv_patch_size: GV tile side (paper: 8).
        gv_distance: GV distance between variance maps (``gvcore.gradient_variance_loss``'s ``distance``).

    Example:
        >>> [(t.name, t.weight) for t in parse_loss("mse+gv")]
        [('mse', 1.0), ('gv', 0.01)]
    """
    if not isinstance(recipe, str) or not recipe.strip():
        raise ValueError(f"loss must be a recipe like 'l1+gv'; got {recipe!r}")
    names = [part.strip().lower() for part in recipe.split("+")]
    for name in names:
        check_choice("loss term", name, tuple(LOSS_TERMS))
    if len(set(names)) != len(names):
        raise ValueError(f"loss recipe {recipe!r} repeats a term")
    if gv_weight is None:
        pixel = next((n for n in names if n in DEFAULT_GV_WEIGHT), "mse")
        gv_weight = DEFAULT_GV_WEIGHT[pixel]
    if not math.isfinite(gv_weight) or gv_weight < 0:
        raise ValueError(f"gv_weight must be a finite number >= 0; got {gv_weight!r}")
    options = {"gv_weight": gv_weight, "gv_patch_size": gv_patch_size, "gv_distance": gv_distance}
    return [LOSS_TERMS[name](options) for name in names]


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None``/``"auto"`` fields are filled by :func:`resolve_config`.

    Fields that define the result (checked to match on resume): ``arch``, ``scale``, ``loss``, ``gv_*``,
    ``data``, ``protocol``, ``batch_size``, ``crop``, ``seed``, the optimizer and schedule fields,
    ``arch_kwargs``. ``steps`` may be raised on resume (the schedule follows the new ``steps``).
    """

    arch: str
    scale: int
    out: str
    loss: str = "l1"
    data: str = "bundled"
    steps: int = 1000
    batch_size: int = 16
    crop: int = 64
    seed: int = 0
    resume: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gv_weight: float | None = None
    gv_patch_size: int = 8
    gv_distance: str = "mse"
    protocol: Protocol = "standard"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: Literal["auto", "adam", "sgd"] = "auto"
    lr: float | None = None
    schedule: Literal["auto", "constant", "multistep", "cosine"] = "auto"
    milestones: tuple[float, ...] = (1 / 3, 2 / 3)
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float | None = None
    grad_clip: float | None = None
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    log_every: int = 10
    val_every: int = 100
    ckpt_every: int = 100
    val_data: str | None = None
    val_images: int = 4
    val_crop: int = 128
    workers: int = 0
    threads: int | None = None
    label: str | None = None
    progress: bool = True
    #: also keep ``snapshots/step_000500.safetensors``-style checkpoints at every ``ckpt_every``.
    keep_snapshots: bool = False
    #: testing hook: stop abruptly after this many steps (as if killed), without a final checkpoint.
    stop_after: int | None = None


_RESULT_FIELDS = (
    "arch",
    "scale",
    "loss",
    "gv_weight",
    "gv_patch_size",
    "gv_distance",
    "data",
    "protocol",
    "batch_size",
    "crop",
    "seed",
    "arch_kwargs",
    "optimizer",
    "lr",
    "schedule",
    "milestones",
    "gamma",
    "momentum",
    "weight_decay",
    "grad_clip",
)


@dataclass
class RunResult:
    """What :func:`train` returns: the run directory, the steps done, final validation metrics, time."""

    out: Path
    steps: int
    metrics: dict[str, float]
    elapsed_s: float
    checkpoint: Path


class SimulatedKill(RuntimeError):
    """Raised by the ``stop_after`` testing hook: the run stops as abruptly as a kill (no final save)."""


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Validate ``config`` and fill its ``auto``/``None`` fields with the recipe defaults (a new object)."""
    from gvcore.models import MODEL_NAMES

    check_choice("arch", config.arch, MODEL_NAMES)
    check_positive_int("scale", config.scale)
    for name in ("steps", "batch_size", "crop", "log_every", "gv_patch_size", "val_images", "val_crop"):
        check_positive_int(name, getattr(config, name))
    for name in ("val_every", "ckpt_every", "workers"):
        check_positive_int(name, getattr(config, name), minimum=0)
    if config.crop % config.scale:
        raise ValueError(f"crop must be a multiple of scale {config.scale}; got {config.crop}")
    check_choice("device", config.device, ("auto", "cpu", "cuda"))
    check_choice("protocol", config.protocol, PROTOCOLS)
    check_choice("optimizer", config.optimizer, ("auto", "adam", "sgd"))
    check_choice("schedule", config.schedule, ("auto", "constant", "multistep", "cosine"))
    check_choice("amp", config.amp, ("auto", "bf16", "fp16", "off"))
    terms = parse_loss(config.loss, config.gv_weight, config.gv_patch_size, config.gv_distance)
    gv = next((t for t in terms if t.name == "gv"), None)
    sgd = config.optimizer == "sgd" or (config.optimizer == "auto" and config.arch.startswith("vdsr"))
    resolved = dataclasses.replace(
        config,
        loss="+".join(t.name for t in terms),
        gv_weight=gv.weight if gv is not None else 0.0,
        optimizer="sgd" if sgd else "adam",
        lr=config.lr if config.lr is not None else (0.1 if sgd else 5e-4),
        schedule=config.schedule if config.schedule != "auto" else ("multistep" if sgd else "cosine"),
        weight_decay=config.weight_decay if config.weight_decay is not None else (1e-4 if sgd else 0.0),
        grad_clip=config.grad_clip if config.grad_clip is not None else (0.4 if sgd else 0.0),
        milestones=tuple(float(m) for m in config.milestones),
        val_data=config.val_data if config.val_data is not None else "bundled",
        label=config.label
        or f"{config.arch}-x{config.scale}-{'+'.join(t.name for t in terms)}-s{config.seed}",
        arch_kwargs=_default_arch_kwargs(config),
    )
    if not (resolved.lr or 0) > 0 or not math.isfinite(float(resolved.lr or 0)):
        raise ValueError(f"lr must be a finite number > 0; got {resolved.lr!r}")
    if not math.isfinite(float(resolved.grad_clip or 0)) or float(resolved.grad_clip or 0) < 0:
        raise ValueError(
            f"grad_clip must be a finite number >= 0 (0 = no clipping); got {resolved.grad_clip!r}"
        )
    if not math.isfinite(float(resolved.gv_weight or 0)) or float(resolved.gv_weight or 0) < 0:
        raise ValueError(f"gv_weight must be a finite number >= 0; got {resolved.gv_weight!r}")
    if resolved.weight_decay is not None and not 0 <= float(resolved.weight_decay) < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0; got {resolved.weight_decay!r}")
    if resolved.threads is not None:
        check_positive_int("threads", resolved.threads)
    return resolved


def _default_arch_kwargs(config: TrainConfig) -> dict[str, Any]:
    """``arch_kwargs`` with the degradation's interpolation for VDSR.

    A model trained on the official degradation up-samples its LR input bilinearly, as the official VDSR's
    input is made (PAPER.md).
    """
    kwargs = dict(config.arch_kwargs)
    if config.arch.startswith("vdsr") and config.protocol == "official":
        kwargs.setdefault("interpolation", "bilinear")
    return kwargs


def lr_factor(step: int, steps: int, schedule: str, milestones: tuple[float, ...], gamma: float) -> float:
    """Learning-rate multiplier for the step with 0-based index ``step`` of ``steps`` (a pure function).

    Example:
        >>> [lr_factor(s, 9, "multistep", (1 / 3, 2 / 3), 0.1) for s in (0, 3, 6)]
        [1.0, 0.1, 0.010000000000000002]
    """
    if schedule == "multistep":
        return gamma ** sum(step >= round(m * steps) for m in milestones)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return 1.0


def _loss_dict(config: TrainConfig) -> dict[str, Any]:
    pixel = next((n for n in config.loss.split("+") if n != "gv"), "")
    return {
        "recipe": config.loss,
        "pixel": pixel,
        "gv_weight": config.gv_weight if "gv" in config.loss.split("+") else 0.0,
        "gv_patch_size": config.gv_patch_size,
        "gv_distance": config.gv_distance,
    }


def _load_resume(path: Path, config: TrainConfig) -> dict[str, Any]:
    from gvcore.checkpoint import torch_load_failure

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which, without torch's weights_only advice
        raise ValueError(f"cannot read resume state: {torch_load_failure(str(path), err)}") from err
    saved = json.loads(state["config"])
    ours = json.loads(json.dumps(dataclasses.asdict(config)))
    diff = [k for k in _RESULT_FIELDS if saved.get(k) != ours.get(k)]
    if diff:
        listed = ", ".join(f"{k}: {saved.get(k)!r} -> {ours.get(k)!r}" for k in diff)
        raise ValueError(f"--resume with a different config than the run in {path.parent} ({listed})")
    if int(state["step"]) > config.steps:
        raise ValueError(
            f"the run in {path.parent} is already at step {state['step']} > --steps {config.steps}"
        )
    return state


# ----------------------------------------------------------------------------------------------- the loop


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False  # initialised here, so destroyed here

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(cuda: bool) -> _Dist:
    if dist.is_available() and dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owned=True)


def _resolve_device(kind: str, ctx_local_rank: int) -> torch.device:
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", ctx_local_rank % max(1, torch.cuda.device_count()))
    return torch.device("cpu")


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of a resolved config (:func:`resolve_config`): SGD with momentum, or Adam."""
    lr = float(config.lr or 0.0)
    wd = float(config.weight_decay or 0.0)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=wd)
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)


def train_step(
    net: nn.Module,
    terms: list[LossTerm],
    optimizer: torch.optim.Optimizer,
    lr_batch: torch.Tensor,
    hr_batch: torch.Tensor,
    *,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float = 0.0,
    amp_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One optimisation step: forward, weighted sum of the terms, backward, clip, optimizer step.

    The forward runs under autocast when ``amp_dtype`` is set; the total is ``sum(weight * term)``; the
    gradient norm is clipped when ``grad_clip`` is set. Losses are computed in float32.

    Returns:
        ``(loss, values)``: the weighted total and each term's unweighted value, detached.
    """
    with torch.autocast(
        lr_batch.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
    ):
        sr = net(lr_batch)
    sr = sr.float()
    values = [t.fn(sr, hr_batch) for t in terms]
    loss = sum((t.weight * v for t, v in zip(terms, values)), torch.zeros((), device=sr.device))
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
    return loss.detach(), [v.detach() for v in values]


def _broadcast_error(ctx: _Dist, error: str | None) -> None:
    """Make every rank fail when rank 0 could not set up the run directory (instead of hanging)."""
    if ctx.world_size > 1:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise ValueError(error)


#: decoded images by (files, scale, protocol): runs in one process (the reproduction) decode them once.
_PAIR_CACHE: dict[tuple[Any, ...], list[ImagePair]] = {}


def _cached_pairs(
    data: str, split: Literal["train", "test"], scale: int, protocol: Protocol
) -> list[ImagePair]:
    sources = resolve_images(data, split)
    files = tuple((str(s.hr_path), s.hr_path.stat().st_mtime_ns, s.hr_path.stat().st_size) for s in sources)
    key = (files, scale, protocol)
    if key not in _PAIR_CACHE:
        if len(_PAIR_CACHE) >= 8:
            _PAIR_CACHE.pop(next(iter(_PAIR_CACHE)))
        _PAIR_CACHE[key] = load_pairs(sources, scale, protocol)
    return _PAIR_CACHE[key]


def _training_pairs(config: TrainConfig) -> list[ImagePair]:
    sources = resolve_images(config.data, "train")
    pairs = _cached_pairs(config.data, "train", config.scale, config.protocol)
    for source, pair in zip(sources, pairs):
        h, w = pair.hr.shape[-2:]
        if min(h, w) < config.crop:
            raise ValueError(
                f"image {source.hr_path} is {h}x{w} (after cropping to a multiple of the scale), smaller than "
                f"the crop {config.crop}x{config.crop}; use a smaller --crop or remove the image"
            )
    return pairs


def train(config: TrainConfig) -> RunResult:
    """Train one model as ``config`` says; see the module docstring for the run directory and recipes.

    Raises:
        ValueError: a bad option, data (missing/empty folder, no images, images smaller than the crop),
            an existing run without ``resume``, an unwritable ``out``, or a resume state of another config.
    """
    config = resolve_config(config)
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _setup_and_run(config)
    finally:
        torch.set_num_threads(threads_before)


def _setup_and_run(config: TrainConfig) -> RunResult:
    from gvcore.checkpoint import save_checkpoint
    from gvcore.evaluation import validate
    from gvcore.models import build_model

    device = _resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    terms = parse_loss(config.loss, config.gv_weight, config.gv_patch_size, config.gv_distance)
    # everything that can fail on bad input happens before the run directory is touched
    pairs = _training_pairs(config)
    dataset = PatchDataset(pairs, config.scale, config.crop, config.seed)
    val_pairs = []
    if config.val_every and config.val_data != "none":
        val_pairs = [
            center_crop_pair(p, config.scale, config.val_crop)
            for p in _cached_pairs(str(config.val_data), "test", config.scale, config.protocol)[
                : config.val_images
            ]
        ]
    torch.manual_seed(config.seed)
    model = build_model(config.arch, config.scale, **config.arch_kwargs).to(device)
    # one process trains into a run directory at a time (held until the run ends, released even by SIGKILL)
    lock = run_lock(Path(config.out)) if int(os.environ.get("RANK", "0")) == 0 else None
    ctx = _init_distributed(device.type == "cuda")
    try:
        result = _run(config, ctx, device, model, terms, dataset, val_pairs, save_checkpoint, validate)
        if ctx.world_size > 1:
            # Leave together: rank 0 still validates and writes the last checkpoint after the final step, and
            # a gloo rank whose peer tears its connections down first can abort (SIGABRT) on the way out.
            dist.barrier()
        return result
    finally:
        if lock is not None:
            lock.close()
        if ctx.owned:
            # Free the DistributedDataParallel wrapper (it sits in reference cycles and holds the process
            # group) before destroying the group, so gloo's threads stop while the interpreter is alive; left to
            # interpreter shutdown, a rank can die with "terminate called without an active exception".
            gc.collect()
            dist.destroy_process_group()
            gc.collect()


@dataclass
class _Loop:
    """The state of one run's training loop, shared by its setup, step, logging and checkpointing functions.

    The log window (``[steps, loss, pixel, gv]`` sums) and the first step whose loss was not finite live on the
    training device, so a step never waits for the GPU; they are read when a log row or a checkpoint is written.
    """

    config: TrainConfig
    ctx: _Dist
    device: torch.device
    model: nn.Module
    net: nn.Module
    terms: list[LossTerm]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    out: Path
    samples: int
    val_pairs: list[Any]
    save_checkpoint: Callable[..., Any]
    validate: Callable[..., dict[str, float]]
    step: int = 0
    elapsed_before: float = 0.0
    t0: float = field(default_factory=time.perf_counter)
    metrics: dict[str, float] = field(default_factory=dict)
    window: torch.Tensor = field(default_factory=lambda: torch.zeros(4, dtype=torch.float64))
    first_bad: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))

    def elapsed(self) -> float:
        """Seconds of training so far, across resumes."""
        return self.elapsed_before + time.perf_counter() - self.t0


_WINDOW_KEYS = ("n", "loss", "pixel", "gv")


def _window_dict(window: torch.Tensor) -> dict[str, float]:
    values = window.tolist()
    return {key: (int(v) if key == "n" else float(v)) for key, v in zip(_WINDOW_KEYS, values)}


def _setup_loop(
    config: TrainConfig,
    ctx: _Dist,
    device: torch.device,
    model: nn.Module,
    terms: list[LossTerm],
    samples: int,
    val_pairs: list[Any],
    save_checkpoint: Callable[..., Any],
    validate: Callable[..., dict[str, float]],
) -> _Loop:
    """Prepare the run directory, optimizer and mixed precision, restore a resume state, write ``config.json``."""
    out = Path(config.out)
    error = None
    if ctx.main:
        try:
            prepare_run_dir(out, config.resume)
        except ValueError as err:
            error = str(err)
    _broadcast_error(ctx, error)
    use_amp = device.type == "cuda" and config.amp != "off"
    amp_dtype = torch.float16 if config.amp == "fp16" else torch.bfloat16
    if use_amp and config.amp == "auto" and not torch.cuda.is_bf16_supported():
        amp_dtype = torch.float16
    loop = _Loop(
        config=config,
        ctx=ctx,
        device=device,
        model=model,
        net=model,
        terms=terms,
        optimizer=make_optimizer(model, config),
        scaler=torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16),
        amp_dtype=amp_dtype if use_amp else None,
        out=out,
        samples=samples,
        val_pairs=val_pairs,
        save_checkpoint=save_checkpoint,
        validate=validate,
    )
    if config.resume and (out / "resume.pt").exists():
        _restore(loop, _load_resume(out / "resume.pt", config))
    loop.window = loop.window.to(device)
    loop.first_bad = loop.first_bad.to(device)
    if ctx.main:
        log_path = out / "log.csv"
        if config.resume:
            truncate_log(log_path, loop.step)
        elif log_path.exists():
            log_path.unlink()
        meta = {
            **dataclasses.asdict(config),
            "world_size": ctx.world_size,
            "torch_version": torch.__version__,
        }
        atomic_write_text(out / "config.json", json.dumps(meta, indent=2) + "\n")
    if ctx.world_size > 1:
        loop.net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return loop


def _restore(loop: _Loop, state: dict[str, Any]) -> None:
    """Load a resume state (model, optimizer, scaler, step, log window, RNG states) into ``loop``."""
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    if state["scaler"]:
        loop.scaler.load_state_dict(state["scaler"])
    loop.step, loop.elapsed_before = int(state["step"]), float(state["elapsed_s"])
    saved = dict(state["window"])
    loop.window = torch.tensor([float(saved.get(k, 0.0)) for k in _WINDOW_KEYS], dtype=torch.float64)
    set_rng_state(state["rng"])


def _make_loader(loop: _Loop, dataset: PatchDataset) -> torch.utils.data.DataLoader[Any]:
    config = loop.config
    sampler = StepBatchSampler(config.batch_size, config.steps, loop.step, loop.ctx.rank, loop.ctx.world_size)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(config.seed),
        pin_memory=loop.device.type == "cuda",
        persistent_workers=False,
    )


def _step(loop: _Loop, lr_batch: torch.Tensor, hr_batch: torch.Tensor) -> None:
    """One optimisation step; its losses are added to the log window on the device (no host sync)."""
    config = loop.config
    factor = lr_factor(loop.step, config.steps, config.schedule, config.milestones, config.gamma)
    for group in loop.optimizer.param_groups:
        group["lr"] = float(config.lr or 0.0) * factor
    loss, values = train_step(
        loop.net,
        loop.terms,
        loop.optimizer,
        lr_batch.to(loop.device, non_blocking=True),
        hr_batch.to(loop.device, non_blocking=True),
        scaler=loop.scaler,
        grad_clip=float(config.grad_clip or 0.0),
        amp_dtype=loop.amp_dtype,
    )
    loop.step += 1
    zero = torch.zeros((), device=loop.device)
    pixel = sum((v for t, v in zip(loop.terms, values) if t.column == "pixel"), zero)
    gv = sum((v for t, v in zip(loop.terms, values) if t.column == "gv"), zero)
    loop.window += torch.stack([torch.ones((), device=loop.device), loss, pixel, gv]).double()
    if not loop.scaler.is_enabled():  # fp16's scaler skips non-finite steps itself
        bad = ~torch.isfinite(loss) & (loop.first_bad == 0)
        loop.first_bad = torch.where(bad, torch.full_like(loop.first_bad, loop.step), loop.first_bad)


def _check_finite(loop: _Loop) -> None:
    """Stop (``ValueError``) if a loss since the start was not finite; reads one number from the device."""
    first_bad = int(loop.first_bad)
    if first_bad:
        raise ValueError(
            f"training diverged at step {first_bad}: the loss is not finite; nothing was saved after the last "
            "checkpoint (lower --lr, or set --grad-clip)"
        )


def _log(loop: _Loop, validate_now: bool) -> dict[str, Any]:
    """Write the log window as a ``log.csv`` row (validating first when asked); reset the window."""
    config = loop.config
    _check_finite(loop)
    sums = loop.window.clone()
    if loop.ctx.world_size > 1:
        dist.all_reduce(sums)
        sums /= loop.ctx.world_size
    n, loss, pixel, gv = sums.tolist()
    n = max(1.0, n)
    row: dict[str, Any] = {
        "step": loop.step,
        "epoch": loop.step * config.batch_size // loop.samples,
        "lr": float(loop.optimizer.param_groups[0]["lr"]),
        "loss": loss / n,
        "loss_pixel": pixel / n,
        "loss_gv": gv / n if config.gv_weight else None,
        "elapsed_s": loop.elapsed(),
    }
    loop.window.zero_()
    if loop.ctx.main and validate_now:
        loop.metrics = loop.validate(loop.model, loop.val_pairs, config.scale, loop.device, config.protocol)
        loop.net.train()
        row.update({f"val_{k}": v for k, v in loop.metrics.items()})
    return row


def snapshot_name(step: int) -> str:
    """File name of the snapshot kept at ``step`` by ``keep_snapshots`` (``step_000500.safetensors``)."""
    return f"step_{step:06d}.safetensors"


def _checkpoint(loop: _Loop) -> None:
    """Save ``last.safetensors`` (and a snapshot with ``keep_snapshots``), then the resume state; rank 0 only.

    Refuses non-finite weights, so a diverged run keeps its last good checkpoint.
    """
    if not loop.ctx.main:
        return
    _check_finite(loop)
    config, model = loop.config, loop.model
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise ValueError(f"training diverged by step {loop.step}: non-finite weights are not saved")
    options = dict(
        arch=config.arch,
        arch_kwargs=config.arch_kwargs,
        scale=config.scale,
        loss=_loss_dict(config),
        data=str(config.data),
        steps=loop.step,
        seed=config.seed,
        metrics=loop.metrics,
        label=config.label,
        half=False,
        degradation=config.protocol,
    )
    if config.keep_snapshots:
        (loop.out / "snapshots").mkdir(exist_ok=True)
        loop.save_checkpoint(loop.out / "snapshots" / snapshot_name(loop.step), model, **options)
    loop.save_checkpoint(loop.out / "last.safetensors", model, **options)
    state = {
        "format": "gvcore-resume/1",
        "step": loop.step,
        "elapsed_s": loop.elapsed(),
        "config": json.dumps(dataclasses.asdict(config)),
        "model": model.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scaler": loop.scaler.state_dict() if loop.scaler.is_enabled() else {},
        "rng": rng_state(),
        "window": _window_dict(loop.window),
    }
    atomic_write_bytes(loop.out / "resume.pt", lambda fh: torch.save(state, fh))


def _run(
    config: TrainConfig,
    ctx: _Dist,
    device: torch.device,
    model: nn.Module,
    terms: list[LossTerm],
    dataset: PatchDataset,
    val_pairs: list[Any],
    save_checkpoint: Callable[..., Any],
    validate: Callable[..., dict[str, float]],
) -> RunResult:
    from tqdm.auto import tqdm

    loop = _setup_loop(config, ctx, device, model, terms, len(dataset), val_pairs, save_checkpoint, validate)
    loader = _make_loader(loop, dataset)
    log = CsvLog(loop.out / "log.csv", LOG_COLUMNS) if ctx.main else None
    bar = tqdm(
        total=config.steps, initial=loop.step, disable=not (config.progress and ctx.main), desc=config.label
    )
    try:
        loop.net.train()
        for lr_batch, hr_batch in loader:
            _step(loop, lr_batch, hr_batch)
            bar.update(1)
            final = loop.step == config.steps
            validate_now = (
                bool(val_pairs) and config.val_every > 0 and (loop.step % config.val_every == 0 or final)
            )
            if loop.step % config.log_every == 0 or final or validate_now:
                row = _log(loop, validate_now)
                if log is not None:
                    log.write(row)
                bar.set_postfix(
                    pixel=f"{row['loss_pixel']:.4g}", gv=f"{row['loss_gv'] or 0:.4g}", refresh=False
                )
            if (config.ckpt_every and loop.step % config.ckpt_every == 0) or final:
                _checkpoint(loop)
            if config.stop_after is not None and config.stop_after <= loop.step < config.steps:
                raise SimulatedKill(f"stopped after step {loop.step} (stop_after)")
    finally:
        bar.close()
        if log is not None:
            log.close()
    return RunResult(loop.out, loop.step, loop.metrics, loop.elapsed(), loop.out / "last.safetensors")
