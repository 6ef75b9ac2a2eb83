"""The SR models of the paper and their light presets, behind one registry.

``MODELS`` maps a name to a constructor ``f(scale, **kwargs) -> nn.Module``; :func:`build_model` is the one way
to make a model from a name (the checkpoint loader uses it too). Every model maps RGB ``(B, 3, h, w)`` in [0, 1]
to ``(B, 3, s*h, s*w)`` and carries ``scale``, ``arch`` (its registry name) and ``arch_kwargs`` (the keyword
arguments it was built with, JSON-serialisable), which is all :func:`gvcore.save_checkpoint` needs.

| name | what | parameters (x2 / x4) |
|---|---|---|
| ``vdsr`` | VDSR, 20 conv layers, 64 features, bicubic input, global residual | 667k / 667k |
| ``vdsr-lite`` | VDSR, 8 conv layers, 32 features | 57k / 57k |
| ``edsr`` | EDSR baseline, 16 blocks, 64 features | 1.37M / 1.52M |
| ``edsr-lite`` | EDSR, 4 blocks, 32 features | 122k / 159k |
| ``espcn`` | ESPCN, 64-32 features, tanh, pixel shuffle (RGB) | 27k / 37k |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from gvcore._validation import check_choice, check_positive_int
from gvcore.models import edsr, espcn, vdsr
from gvcore.models._recognise import Recognised
from gvcore.models._support import ArchSupport, Preset
from gvcore.models.edsr import EDSR
from gvcore.models.espcn import ESPCN
from gvcore.models.vdsr import VDSR

__all__ = [
    "ARCHITECTURES",
    "EDSR",
    "ESPCN",
    "MODELS",
    "MODEL_NAMES",
    "RECOGNISERS",
    "SCALES",
    "VDSR",
    "ArchSupport",
    "Preset",
    "build_model",
]

#: scales every model is built and tested at (the paper's).
SCALES: tuple[int, ...] = (2, 3, 4)

#: one record per architecture (``SUPPORT`` at the end of each model's module), in registry order; adding an
#: architecture means writing its module and adding its record here.
ARCHITECTURES: tuple[ArchSupport, ...] = (vdsr.SUPPORT, edsr.SUPPORT, espcn.SUPPORT)

#: registry name -> constructor ``f(scale, **kwargs)`` (each family, then its presets).
MODELS: dict[str, Callable[..., nn.Module]] = {
    name: build for support in ARCHITECTURES for name, build in support.constructors().items()
}

#: architecture family -> recogniser of its foreign state dicts, tried in order by :func:`gvcore.load_model`.
RECOGNISERS: dict[str, Callable[[Mapping[str, torch.Tensor]], Recognised | None]] = {
    support.family: support.recognise for support in ARCHITECTURES
}

#: registered names, in registry order.
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def build_model(name: str, scale: int, **kwargs: Any) -> nn.Module:
    """Build a registered model, in training mode, on the CPU, float32.

    Args:
        name: a key of :data:`MODELS`.
        scale: upscaling factor (2, 3 or 4; VDSR and ESPCN accept any positive int, EDSR powers of 2 and 3).
        **kwargs: architecture options of the constructor (e.g. ``num_features=32``); stored on the model as
            ``arch_kwargs`` so a checkpoint can rebuild it.

    Returns:
        The module, with attributes ``scale``, ``arch`` (= ``name``) and ``arch_kwargs``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones) or a bad option value.
        TypeError: an option the architecture does not have.

    Example:
        >>> import torch
        >>> model = build_model("espcn", 2)
        >>> model(torch.rand(1, 3, 16, 16)).shape, model.arch, model.scale
        (torch.Size([1, 3, 32, 32]), 'espcn', 2)
    """
    check_choice("name", name, MODEL_NAMES)
    check_positive_int("scale", scale)
    model = MODELS[name](scale, **kwargs)
    # plain attributes (nn.Module's __setattr__ is typed for tensors and modules only)
    object.__setattr__(model, "arch", name)
    object.__setattr__(model, "arch_kwargs", dict(kwargs))
    return model
