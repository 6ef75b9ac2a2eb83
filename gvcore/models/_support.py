"""One record per architecture: how to build it, its presets and how to recognise its foreign weights.

Like spandrel's ``ArchSupport``: each model module ends with one :class:`ArchSupport` (``SUPPORT``), and
:data:`gvcore.models.ARCHITECTURES` lists them. ``MODELS`` (name -> constructor) and ``RECOGNISERS`` (family ->
recogniser) are derived from that list, so adding an architecture means writing its module and adding one line
to the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gvcore.models._recognise import Recognised

__all__ = ["ArchSupport", "Preset"]


@dataclass(frozen=True)
class Preset:
    """A registry name for an architecture with other default options (``vdsr-lite``: fewer layers).

    Calling it builds the architecture with ``defaults`` under the caller's options (the caller's win).
    """

    name: str
    build: Callable[..., nn.Module]
    defaults: Mapping[str, Any]

    def __call__(self, scale: int, **kwargs: Any) -> nn.Module:
        """The architecture at ``scale`` with the preset's defaults, overridden by ``kwargs``."""
        return self.build(scale, **{**self.defaults, **kwargs})


@dataclass(frozen=True)
class ArchSupport:
    """Everything gvcore knows about one architecture.

    Attributes:
        family: the architecture's registry name (``vdsr``), also the name its foreign weights are loaded as.
        build: constructor ``f(scale, **kwargs) -> nn.Module``.
        recognise: reads a foreign state dict's keys and shapes: ``(arch_kwargs, scale or None)``, or ``None``
            when the dict is not this architecture.
        presets: further registry names (``vdsr-lite``) as :class:`Preset` records, in registry order.
    """

    family: str
    build: Callable[..., nn.Module]
    recognise: Callable[[Mapping[str, torch.Tensor]], Recognised | None]
    presets: tuple[Preset, ...] = field(default=())

    def constructors(self) -> dict[str, Callable[..., nn.Module]]:
        """Registry name -> constructor: the family first, then its presets."""
        return {self.family: self.build, **{preset.name: preset for preset in self.presets}}
