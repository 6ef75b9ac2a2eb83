"""Building a model for a checkpoint's weights: checked against the file's tensors before any memory is used.

Shared by our own format and foreign state dicts (:mod:`gvcore.checkpoint.store`, :mod:`gvcore.checkpoint.foreign`):
the architecture options are bounded, the parameter names and shapes are compared on the ``meta`` device, and
the weights are loaded strictly (finite values only, float32).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gvcore.checkpoint.meta import CheckpointError
from gvcore.models import build_model

__all__ = ["MAX_ARCH_OPTION"]


def _float32(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def _check_scale(source: Path, requested: int | None, found: int) -> None:
    if requested is not None and requested != found:
        raise CheckpointError(
            f"scale mismatch: asked for x{requested} but {str(source)!r} is a x{found} checkpoint"
        )


#: largest integer architecture option (blocks, layers, features) a checkpoint may ask for.
MAX_ARCH_OPTION = 1024


def _build_matching(
    source: Path, name: str, scale: int, kwargs: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> nn.Module:
    """Build ``name`` only after checking that its parameters are exactly the file's tensors.

    The check (names and shapes) runs on the ``meta`` device, without memory: a small file whose metadata or
    keys describe a huge model is refused here, before anything is allocated.
    """
    for key, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_ARCH_OPTION:
            raise CheckpointError(
                f"{str(source)!r} asks for {name!r} with {key}={value}; options are limited to "
                f"0..{MAX_ARCH_OPTION} (a file that small cannot hold such a model)"
            )
    try:
        with torch.device("meta"):
            skeleton = build_model(name, scale, **kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build {name!r} from the options in {str(source)!r}: {err}") from err
    except RuntimeError as err:  # e.g. absurd sizes rejected even on the meta device
        raise CheckpointError(
            f"the options in {str(source)!r} describe an unbuildable {name!r}: {err}"
        ) from err
    wanted = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in tensors.items()}
    if wanted != given:
        missing = sorted(set(wanted) - set(given))
        extra = sorted(set(given) - set(wanted))
        shapes = sorted(k for k in set(wanted) & set(given) if wanted[k] != given[k])
        params = sum(math.prod(shape) for shape in wanted.values())
        raise CheckpointError(
            f"{str(source)!r} does not hold the weights of the {name!r} its metadata or keys describe "
            f"({params:,} parameters): {len(missing)} missing tensor(s) {missing[:3]}, {len(extra)} unexpected "
            f"{extra[:3]}, {len(shapes)} of another shape {shapes[:3]}"
        )
    try:
        return build_model(name, scale, **kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot build {name!r} from the options in {str(source)!r}: {err}") from err


def _strict_load(source: Path, model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{str(source)!r} holds non-finite weights (NaN or Inf) in {len(bad)} tensor(s), e.g. {bad[:3]}: "
            "the run that wrote it diverged"
        )
    try:
        model.load_state_dict(_float32(state_dict), strict=True)
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise CheckpointError(
            f"weights in {str(source)!r} do not fit the architecture: {first_line} ..."
        ) from err
