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
    """``arch_kwargs`` with the degradation's interpolation for VDSR: a model trained on the official
    degradation up-samples its LR input bilinearly, as the official VDSR's input is made (PAPER.md)."""
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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"cannot read resume state {path}: {err}") from err
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
    """One optimisation step: forward (under autocast when ``amp_dtype``), ``sum(weight * term)``, backward,
    optional gradient-norm clip, optimizer step. Losses are computed in float32.

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

    out = Path(config.out)
    error = None
    if ctx.main:
        try:
            prepare_run_dir(out, config.resume)
        except ValueError as err:
            error = str(err)
    _broadcast_error(ctx, error)
    resume_path, ckpt_path, log_path = out / "resume.pt", out / "last.safetensors", out / "log.csv"
    optimizer = make_optimizer(model, config)
    use_amp = device.type == "cuda" and config.amp != "off"
    amp_dtype = torch.float16 if config.amp == "fp16" else torch.bfloat16
    if use_amp and config.amp == "auto" and not torch.cuda.is_bf16_supported():
        amp_dtype = torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    start, elapsed_before, window = 0, 0.0, {"n": 0, "loss": 0.0, "pixel": 0.0, "gv": 0.0}
    if config.resume and resume_path.exists():
        state = _load_resume(resume_path, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        start, elapsed_before = int(state["step"]), float(state["elapsed_s"])
        window = dict(state["window"])
        set_rng_state(state["rng"])
    if ctx.main:
        if config.resume:
            truncate_log(log_path, start)
        elif log_path.exists():
            log_path.unlink()
        meta = {
            **dataclasses.asdict(config),
            "world_size": ctx.world_size,
            "torch_version": torch.__version__,
        }
        atomic_write_text(out / "config.json", json.dumps(meta, indent=2) + "\n")
    net: nn.Module = model
    if ctx.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler = StepBatchSampler(config.batch_size, config.steps, start, ctx.rank, ctx.world_size)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(config.seed),
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    log = CsvLog(log_path, LOG_COLUMNS) if ctx.main else None
    bar = tqdm(
        total=config.steps, initial=start, disable=not (config.progress and ctx.main), desc=config.label
    )
    metrics: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start

    def save(step: int) -> None:
        if not ctx.main:
            return
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise ValueError(f"training diverged by step {step}: non-finite weights are not saved")
        save_checkpoint(
            ckpt_path,
            model,
            arch=config.arch,
            arch_kwargs=config.arch_kwargs,
            scale=config.scale,
            loss=_loss_dict(config),
            data=str(config.data),
            steps=step,
            seed=config.seed,
            metrics=metrics,
            label=config.label,
            half=False,
            degradation=config.protocol,
        )
        state = {
            "format": "gvcore-resume/1",
            "step": step,
            "elapsed_s": elapsed_before + time.perf_counter() - t0,
            "config": json.dumps(dataclasses.asdict(config)),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            "rng": rng_state(),
            "window": dict(window),
        }
        atomic_write_bytes(resume_path, lambda fh: torch.save(state, fh))

    try:
        net.train()
        for lr_batch, hr_batch in loader:
            factor = lr_factor(step, config.steps, config.schedule, config.milestones, config.gamma)
            for group in optimizer.param_groups:
                group["lr"] = float(config.lr or 0.0) * factor
            loss, values = train_step(
                net,
                terms,
                optimizer,
                lr_batch.to(device, non_blocking=True),
                hr_batch.to(device, non_blocking=True),
                scaler=scaler,
                grad_clip=float(config.grad_clip or 0.0),
                amp_dtype=amp_dtype if use_amp else None,
            )
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value) and not scaler.is_enabled():  # fp16's scaler skips such steps itself
                raise ValueError(
                    f"training diverged at step {step}: the loss is {value}; nothing was saved after the last "
                    "checkpoint (lower --lr, or set --grad-clip)"
                )
            window["n"] += 1
            window["loss"] += value
            for t, v in zip(terms, values):
                window[t.column] += float(v.detach())
            bar.update(1)
            final = step == config.steps
            validate_now = (
                bool(val_pairs) and config.val_every > 0 and (step % config.val_every == 0 or final)
            )
            if step % config.log_every == 0 or final or validate_now:
                sums = torch.tensor([window["loss"], window["pixel"], window["gv"]], dtype=torch.float64)
                if ctx.world_size > 1:
                    dist.all_reduce(sums)
                    sums /= ctx.world_size
                n = max(1, window["n"])
                row: dict[str, Any] = {
                    "step": step,
                    "epoch": step * config.batch_size // len(dataset),
                    "lr": float(optimizer.param_groups[0]["lr"]),
                    "loss": float(sums[0]) / n,
                    "loss_pixel": float(sums[1]) / n,
                    "loss_gv": float(sums[2]) / n if config.gv_weight else None,
                    "elapsed_s": elapsed_before + time.perf_counter() - t0,
                }
                window = {"n": 0, "loss": 0.0, "pixel": 0.0, "gv": 0.0}
                if ctx.main and validate_now:
                    metrics = validate(model, val_pairs, config.scale, device, config.protocol)
                    net.train()
                    row.update({f"val_{k}": v for k, v in metrics.items()})
                if log is not None:
                    log.write(row)
                bar.set_postfix(
                    pixel=f"{row['loss_pixel']:.4g}", gv=f"{row['loss_gv'] or 0:.4g}", refresh=False
                )
            if (config.ckpt_every and step % config.ckpt_every == 0) or step == config.steps:
                save(step)
            if config.stop_after is not None and step >= config.stop_after and step < config.steps:
                raise SimulatedKill(f"stopped after step {step} (stop_after)")
    finally:
        bar.close()
        if log is not None:
            log.close()
    return RunResult(out, step, metrics, elapsed_before + time.perf_counter() - t0, ckpt_path)
