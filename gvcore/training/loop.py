"""The training loop of :func:`gvcore.training.run.train`: setup, step, logging, checkpointing and resume state.

The loop's state is one :class:`_Loop` record shared by :func:`_setup_loop` (run directory, optimizer, mixed
precision, resume), :func:`_step` (one optimisation step, its losses summed on the device), :func:`_log` (a
``log.csv`` row, validating when asked) and :func:`_checkpoint` (``last.safetensors``, snapshots and
``resume.pt``, atomically, rank 0 only); :func:`_run` drives them over the data loader.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gvcore.checkpoint.safe_pickle import torch_load_failure
from gvcore.data.patches import PatchDataset, StepBatchSampler, seed_worker
from gvcore.training.config import _RESULT_FIELDS, LossTerm, TrainConfig, _loss_dict
from gvcore.training.distributed import _broadcast_error, _Dist
from gvcore.training.runstate import (
    CsvLog,
    atomic_write_bytes,
    atomic_write_text,
    prepare_run_dir,
    rng_state,
    set_rng_state,
    truncate_log,
)
from gvcore.training.step import lr_factor, make_optimizer, train_step

__all__ = ["LOG_COLUMNS", "RunResult", "SimulatedKill", "snapshot_name"]

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


def _load_resume(path: Path, config: TrainConfig) -> dict[str, Any]:

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
