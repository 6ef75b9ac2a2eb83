"""One optimisation step and what drives it: the optimizer of a recipe and the learning-rate schedule.

:func:`train_step` is the whole of a step (forward, ``sum(weight * term)``, backward, clip, optimizer step),
shared by the training loop (:mod:`gvcore.training.loop`) and the benchmark (``bench/bench_train_step.py``);
:func:`lr_factor` is a pure function of the step, so a resumed run follows the same schedule.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gvcore.training.config import LossTerm, TrainConfig

__all__ = ["lr_factor", "make_optimizer", "train_step"]


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
