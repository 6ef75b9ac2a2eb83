"""Training: ``train(TrainConfig) -> RunResult``, the library function under ``gvcore train``.

A run directory holds ``config.json`` (the resolved config, written atomically at start), ``log.csv`` (one row
per log step, appended and flushed), ``last.safetensors`` (latest weights, :func:`gvcore.save_checkpoint`) and
``resume.pt`` (model, optimizer, scaler, step, RNG states and log-window sums; tensors and plain containers
only, read back with ``torch.load(weights_only=True)``). Checkpoint and resume state are written every
``ckpt_every`` steps and at the end, each atomically (temp file + rename), so a run killed at any point
(SIGKILL included) continues from its last resume state with ``resume=True``; on CPU it reaches bit-identical
weights to an uninterrupted run, because the data stream is a pure function of the step (:mod:`gvcore.data.patches`),
the learning rate a pure function of the step, and every RNG state is restored.

Recipes (``optimizer="auto"``):

- VDSR (``vdsr``, ``vdsr-lite``) -- the official GV recipe: SGD lr 0.1, momentum 0.9, weight decay 1e-4,
  learning rate x0.1 at 1/3 and 2/3 of the run (the official epochs 10 and 20 of 30, scaled to ``steps``),
  gradient-norm clip 0.4 (PAPER.md).
- EDSR, ESPCN -- Adam (0.9, 0.999), lr 5e-4, cosine decay to 0 over ``steps`` (short runs on CPU).

Under ``torchrun --nproc_per_node=N`` the same call trains with DistributedDataParallel (gloo on CPU, nccl on
CUDA): every step's global batch of ``batch_size`` samples is split across the processes (see
:class:`gvcore.data.patches.StepBatchSampler`), and rank 0 alone writes the run directory.

The pieces: :mod:`gvcore.training.config` (the config, its validation and recipe defaults, the loss recipe),
:mod:`gvcore.training.step` (optimizer, learning-rate schedule, one step), :mod:`gvcore.training.distributed`
(process group and device), :mod:`gvcore.training.loop` (the loop, its log, checkpoints and resume state).
This module holds :func:`train` and the data it trains on, and re-exports every public name.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist

from gvcore.checkpoint.store import save_checkpoint
from gvcore.data.patches import PatchDataset, center_crop_pair
from gvcore.data.sources import ImagePair, load_pairs, resolve_images
from gvcore.eval.evaluate import validate
from gvcore.models import build_model
from gvcore.protocol import Protocol
from gvcore.training.config import (
    DEFAULT_GV_WEIGHT,
    LOSS_TERMS,
    LossTerm,
    TrainConfig,
    parse_loss,
    resolve_config,
)
from gvcore.training.config import LossFn as LossFn
from gvcore.training.distributed import _init_distributed, _resolve_device
from gvcore.training.loop import LOG_COLUMNS, RunResult, SimulatedKill, _run
from gvcore.training.loop import snapshot_name as snapshot_name
from gvcore.training.runstate import run_lock
from gvcore.training.step import lr_factor, make_optimizer, train_step

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
    pairs = _cached_pairs(config.data, "train", config.scale, Protocol.parse(config.protocol))
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

    device = _resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    terms = parse_loss(config.loss, config.gv_weight, config.gv_patch_size, config.gv_distance)
    # everything that can fail on bad input happens before the run directory is touched
    pairs = _training_pairs(config)
    dataset = PatchDataset(pairs, config.scale, config.crop, config.seed)
    val_pairs = []
    if config.val_every and config.val_data != "none":
        val_pairs = [
            center_crop_pair(p, config.scale, config.val_crop)
            for p in _cached_pairs(
                str(config.val_data), "test", config.scale, Protocol.parse(config.protocol)
            )[: config.val_images]
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
