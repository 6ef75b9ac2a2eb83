"""Processes and devices of a training run: the DistributedDataParallel process group and the device.

Under ``torchrun --nproc_per_node=N`` the group is initialised here (gloo on CPU, nccl on CUDA) and rank 0 is
the one process that writes the run directory; a setup failure on rank 0 is broadcast so every rank stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def _broadcast_error(ctx: _Dist, error: str | None) -> None:
    """Make every rank fail when rank 0 could not set up the run directory (instead of hanging)."""
    if ctx.world_size > 1:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise ValueError(error)
