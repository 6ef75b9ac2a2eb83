"""Helpers for the state-dict recognisers that live next to each model (``recognise`` in each model's module).

A recogniser looks at a foreign state dict's keys and tensor shapes only (nothing is built) and returns
``(arch_kwargs, scale)`` (``scale`` ``None`` when the weights do not determine it), or ``None`` when the dict is
not that architecture. :func:`gvcore.load_model` then checks the full parameter list on the ``meta`` device
before anything is allocated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["Recognised", "conv_channels", "indices"]

#: what a recogniser returns: the constructor options and the scale (``None``: any scale).
Recognised = tuple[dict[str, Any], int | None]


def indices(keys: set[str], pattern: str) -> list[int]:
    r"""The integers captured by ``pattern``'s first group in the keys it fully matches, sorted.

    Example:
        >>> indices({"body.0.w", "body.2.w", "head.w"}, r"body\.(\d+)\.w")
        [0, 2]
    """
    regex = re.compile(pattern)
    return sorted(int(m.group(1)) for k in keys if (m := regex.fullmatch(k)))


def conv_channels(state_dict: Mapping[str, torch.Tensor], key: str) -> tuple[int, int] | None:
    """``(out_channels, in_channels)`` of the 2-D convolution weight ``key``; ``None`` if it is not one."""
    weight = state_dict.get(key)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        return None
    return int(weight.shape[0]), int(weight.shape[1])
