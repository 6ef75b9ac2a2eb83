"""Published models in our checkpoint format: a spandrel architecture's weights plus gvcore metadata.

A published model (:mod:`gvcore.zoo.registry`) is stored as a ``gvcore-checkpoint/1`` ``.safetensors`` whose ``arch`` is
a spandrel architecture id (``"DAT"``, ``"ESRGAN"``, ``"Compact"``) instead of a :data:`gvcore.models.MODELS`
key, and whose ``provenance`` says where the weights come from. The tensors are the architecture's own state
dict (BasicSR key layout), weights (floating tensors of two or more dimensions) as float16 and biases,
norms and other small floating tensors as float32 (they cost little and ncnn stores them so), except *derived
buffers*: large buffers (≥
:data:`MIN_OMITTED_NUMEL` values) that the architecture's constructor computes from its hyper-parameters
(DAT's relative-position indices and attention masks: 9.6 M of DAT-light's 10.2 M stored numbers). Their names,
dtypes and shapes are kept in ``arch_kwargs["omitted_buffers"]``; on loading, spandrel builds the model from the
stored tensors with zero placeholders for them, and a second instance built from the same hyper-parameters
gives their values. :func:`save_published` checks the round trip before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from gvcore.checkpoint.foreign import _load_spandrel
from gvcore.checkpoint.meta import CheckpointError, CheckpointMeta
from gvcore.checkpoint.store import _atomic_write, load_model

if TYPE_CHECKING:
    from gvcore.checkpoint.foreign import SpandrelModel

__all__ = ["MAX_OMITTED_NUMEL", "MIN_OMITTED_NUMEL", "load_published", "save_published"]

#: a constructor-computed buffer is left out of the file only from this many values on (small ones, such as
#: DAT's ``rpe_biases``, are kept: spandrel reads some of them to deduce the hyper-parameters).
MIN_OMITTED_NUMEL = 65_536
#: most values a file may ask to be rebuilt (bounds the memory a small hostile file can make us allocate).
MAX_OMITTED_NUMEL = 64_000_000
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "int32": torch.int32}


def _stored(value: torch.Tensor) -> torch.Tensor:
    """How a tensor is stored: float16 for floating tensors of two or more dimensions, else as it is."""
    return value.half() if value.is_floating_point() and value.dim() >= 2 else value


def _fresh_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of a newly constructed twin of a spandrel network (same hyper-parameters)."""
    hyperparameters = getattr(net, "hyperparameters", None)
    if not isinstance(hyperparameters, dict):
        return {}
    return type(net)(**hyperparameters).state_dict()


def _omittable(net: nn.Module) -> dict[str, torch.Tensor]:
    parameters = {name for name, _ in net.named_parameters()}
    fresh = _fresh_state(net)
    return {
        key: value
        for key, value in net.state_dict().items()
        if key not in parameters
        and value.numel() >= MIN_OMITTED_NUMEL
        and key in fresh
        and fresh[key].shape == value.shape
        and torch.equal(fresh[key], value)
    }


def save_published(path: str | os.PathLike[str], net: nn.Module, record: CheckpointMeta) -> Path:
    """Write a spandrel network ``net`` with ``record`` as a gvcore checkpoint, then check it loads back.

    Weights of two or more dimensions are stored as float16 (``dtype`` ``"float16"``), 1-D/0-D tensors as they
    are.

    Args:
        path: target ``.safetensors``; its folder must exist.
        net: the network (``descriptor.model`` of spandrel, or :class:`~gvcore.checkpoint.store.SpandrelModel`'s
            ``net``).
        record: the metadata; ``arch`` must be the spandrel architecture id; ``dtype`` and the
            ``omitted_buffers`` entry of ``arch_kwargs`` are set here.

    Raises:
        CheckpointError: the file does not load back as the same network (every stored tensor, as stored,
            and every rebuilt buffer must be equal), or it cannot be written.
    """
    from safetensors.torch import save as safetensors_bytes

    target = Path(path)
    omitted = _omittable(net)
    spec = {
        key: [str(value.dtype).removeprefix("torch."), list(value.shape)] for key, value in omitted.items()
    }
    tensors = {
        key: _stored(value).detach().cpu().contiguous().clone()
        for key, value in net.state_dict().items()
        if key not in omitted
    }
    record = dataclasses.replace(
        record, arch_kwargs={**record.arch_kwargs, "omitted_buffers": spec}, dtype="float16"
    )
    _atomic_write(target, safetensors_bytes(tensors, metadata=record.to_strings()))
    loaded, _ = load_model(target)
    back = cast("SpandrelModel", loaded).net.state_dict()
    for key, value in net.state_dict().items():
        want = _stored(value).float() if value.is_floating_point() and key not in omitted else value
        if key not in back or not torch.equal(back[key].to(want.dtype), want):
            target.unlink(missing_ok=True)
            raise CheckpointError(
                f"{str(target)!r} does not load back as the network it was made from ({key})"
            )
    return target


def load_published(
    source: Path,
    tensors: dict[str, torch.Tensor],
    record: CheckpointMeta,
    scale: int | None,
    arch: str | None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a gvcore checkpoint whose ``arch`` is a spandrel architecture (module docstring).

    Returns:
        ``(SpandrelModel, metadata)``: the record as :func:`gvcore.checkpoint.store.load_model` gives it for our
        format (``source`` ``"gvcore"``, ``provenance`` included).

    Raises:
        CheckpointError: a malformed ``omitted_buffers`` entry (unknown dtype, a bad shape, more than
            :data:`MAX_OMITTED_NUMEL` values), spandrel not installed, weights that are not the architecture the
            metadata names, or another ``scale``/``arch`` than asked for.
    """
    spec = record.arch_kwargs.get("omitted_buffers") or {}
    placeholders: dict[str, torch.Tensor] = {}
    total = 0
    try:
        for key, (dtype, shape) in dict(spec).items():
            if dtype not in _DTYPES or not all(isinstance(n, int) and n >= 0 for n in shape):
                raise ValueError(f"{key}: {dtype} {shape}")
            total += math.prod(shape)
            if total > MAX_OMITTED_NUMEL:
                raise ValueError(f"more than {MAX_OMITTED_NUMEL:,} values to rebuild")
            placeholders[str(key)] = torch.zeros(shape, dtype=_DTYPES[dtype])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{str(source)!r} has a malformed omitted_buffers entry ({err})") from err
    if set(placeholders) & set(tensors):
        raise CheckpointError(
            f"{str(source)!r} both stores and omits {sorted(set(placeholders) & set(tensors))[:3]}"
        )
    if arch is not None and arch.lower() != record.arch.lower():
        raise CheckpointError(
            f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {record.arch!r}"
        )
    # spandrel must read the weights as the architecture the metadata names (it raises otherwise)
    loaded, _ = _load_spandrel(source, {**tensors, **placeholders}, scale, record.arch)
    model = cast("SpandrelModel", loaded)
    if placeholders:
        fresh = _fresh_state(model.net)
        with torch.no_grad():
            for key in placeholders:
                if key not in fresh:
                    raise CheckpointError(
                        f"{str(source)!r} omits {key!r}, which its architecture does not build"
                    )
                model.net.get_buffer(key).copy_(fresh[key])
    metadata = record.as_dict()
    metadata["source"] = "gvcore"
    return model, metadata
