"""The one place where inputs are checked.

Every public function of :mod:`gvcore` validates its arguments through these helpers, so a bad input always
raises a :class:`ValueError` or :class:`TypeError` whose message names the argument and the offending value.
Never ``assert`` (it vanishes under ``python -O``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "check_choice",
    "check_floating_image",
    "check_positive_int",
    "check_same_shape",
]


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``, listing the valid ones.

    Example:
        >>> check_choice("reduction", "mean", ("mean", "sum", "none"))
        >>> check_choice("reduction", "avg", ("mean", "sum"))
        Traceback (most recent call last):
        ...
        ValueError: reduction must be one of 'mean', 'sum'; got 'avg'
    """
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as ``int`` if it is an integer ``>= minimum``; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_floating_image(
    name: str,
    x: Any,
    channels: int | tuple[int, ...] | None = None,
    min_size: int = 1,
) -> torch.Tensor:
    """Check that ``x`` is a floating-point ``(B, C, H, W)`` tensor and return it.

    Args:
        name: argument name used in error messages.
        x: the value to check.
        channels: required channel count(s), or ``None`` for any.
        min_size: smallest allowed ``H`` and ``W``.

    Raises:
        TypeError: ``x`` is not a tensor, or is not floating point (integer images must be converted
            explicitly, e.g. ``x.float() / 255``).
        ValueError: wrong rank, channel count, or spatial size.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W); got {x.ndim} dims, shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (scale 8-bit images to [0, 1] first); got {x.dtype}"
        )
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if x.shape[1] not in allowed:
            want = " or ".join(str(c) for c in allowed)
            raise ValueError(f"{name} must have {want} channels; got shape {tuple(x.shape)}")
    if x.shape[-2] < min_size or x.shape[-1] < min_size:
        raise ValueError(
            f"{name} must be at least {min_size}x{min_size} pixels; got {x.shape[-2]}x{x.shape[-1]}"
        )
    return x


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise ``ValueError`` if two tensors differ in shape, naming both."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
