"""Foreign weights: state dicts of our own architectures recognised by their keys, anything else via spandrel.

Our EDSR/VDSR/ESPCN key sets are recognised by :data:`gvcore.models.RECOGNISERS` (scale from the upsampler
shapes; VDSR's from ``scale=`` or a ``x2``/``2x`` in the file name); other architectures (ESRGAN/RRDB, SwinIR,
RCAN, HAT, SPAN, Real-ESRGAN compact, ...) are loaded by spandrel and wrapped in :class:`SpandrelModel`, which
gives them gvcore's model contract.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gvcore._validation import check_floating_image
from gvcore.checkpoint.build import _build_matching, _check_scale, _float32, _strict_load
from gvcore.checkpoint.meta import CheckpointError
from gvcore.models import MODELS, RECOGNISERS

__all__ = ["SpandrelModel"]


def _scale_from_name(source: Path) -> int | None:
    match = re.search(r"(?:^|[^a-z0-9])(?:x(\d)|(\d)x)(?:[^a-z0-9]|$)", source.stem.lower())
    return int(match.group(1) or match.group(2)) if match else None


def _load_foreign(
    source: Path, state_dict: dict[str, torch.Tensor], scale: int | None, arch: str | None
) -> tuple[nn.Module, dict[str, Any]]:
    family = None if arch is None else arch.split("-")[0]
    for name, recognise in RECOGNISERS.items():
        found = recognise(state_dict)
        if found is None:
            continue
        if arch is not None and family != name:
            raise CheckpointError(
                f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {name!r} weights"
            )
        kwargs, found_scale = found
        if found_scale is None:
            found_scale = scale if scale is not None else _scale_from_name(source)
            if found_scale is None:
                raise CheckpointError(
                    f"{str(source)!r} holds {name!r} weights, which work at any scale, and neither the file "
                    "nor its name says which; pass scale="
                )
        _check_scale(source, scale, found_scale)
        model = _build_matching(source, name, found_scale, kwargs, state_dict)
        _strict_load(source, model, state_dict)
        metadata = {
            "arch": name,
            "arch_kwargs": kwargs,
            "scale": found_scale,
            "source": "state_dict",
            "label": source.stem,
        }
        return model, metadata
    if arch in MODELS:
        raise CheckpointError(f"architecture mismatch: {str(source)!r} does not hold {arch!r} weights")
    return _load_spandrel(source, state_dict, scale, arch)


class SpandrelModel(nn.Module):
    """An ``nn.Module`` around a spandrel ``ImageModelDescriptor``, with gvcore's model contract.

    Inputs are padded as the architecture requires (reflect, then replicate) and the output cropped back; the
    output is not clamped (like gvcore's own models).

    Shape:
        - Input: ``(B, 3, h, w)``, RGB in [0, 1], the dtype of the weights (float32).
        - Output: ``(B, 3, scale*h, scale*w)``.
    """

    def __init__(self, descriptor: Any) -> None:
        """Wrap the descriptor's network, taking its scale, architecture id and size requirements."""
        super().__init__()
        self.net: nn.Module = descriptor.model
        self.scale = int(descriptor.scale)
        self.arch = str(descriptor.architecture.id)
        self.arch_kwargs: dict[str, Any] = {}
        self.size_requirements = descriptor.size_requirements
        self._call_fn = descriptor._call_fn  # architecture-specific call, e.g. for models with extra inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve ``x`` ``(B, 3, h, w)`` to ``(B, 3, scale*h, scale*w)``."""
        check_floating_image("x", x, channels=3)
        height, width = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(width, height)
        if pad_w or pad_h:
            reflect_w, reflect_h = min(pad_w, width - 1), min(pad_h, height - 1)
            x = nn.functional.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
            x = nn.functional.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")
        out = self._call_fn(self.net, x)
        return out[..., : height * self.scale, : width * self.scale]

    def extra_repr(self) -> str:
        """Architecture and scale, shown in the module's ``repr``."""
        return f"arch={self.arch!r}, scale={self.scale}"


def _import_spandrel() -> Any:
    """``import spandrel`` without leaving an empty ``torchinductor_<user>`` folder in the temp directory.

    Importing spandrel imports ``torch._dynamo``, which creates TorchInductor's cache folder even though nothing
    is compiled; a folder that this import created and left empty is removed again.
    """
    import sys

    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    preset = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    before = {p.name for p in Path(tempfile.gettempdir()).glob("torchinductor_*")}
    import spandrel

    if preset is None:
        for folder in Path(tempfile.gettempdir()).glob("torchinductor_*"):
            if folder.name not in before and folder.is_dir():
                with contextlib.suppress(OSError):  # not empty (another process wrote there): leave it
                    folder.rmdir()
    return spandrel


def _load_spandrel(
    source: Path, state_dict: dict[str, torch.Tensor], scale: int | None, arch: str | None
) -> tuple[nn.Module, dict[str, Any]]:
    try:
        spandrel = _import_spandrel()
    except ImportError as err:
        raise CheckpointError(
            f"unknown architecture in {str(source)!r}: not a gvcore model, and spandrel (needed for "
            "third-party architectures) is not installed: pip install 'gvcore[models]'"
        ) from err
    try:
        descriptor = spandrel.ModelLoader(device="cpu").load_from_state_dict(_float32(state_dict))
    except spandrel.UnsupportedModelError as err:
        raise CheckpointError(
            f"unknown architecture in {str(source)!r}: neither a gvcore model ({', '.join(MODELS)}) nor one "
            f"spandrel recognises (first keys: {', '.join(list(state_dict)[:4])})"
        ) from err
    except Exception as err:  # spandrel recognised the keys but the shapes do not fit its model
        raise CheckpointError(
            f"spandrel could not load {str(source)!r}: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise CheckpointError(
            f"{str(source)!r} is a {descriptor.architecture.id} model, not an image-to-image one"
        )
    found = str(descriptor.architecture.id)
    if arch is not None and arch.lower() != found.lower():
        raise CheckpointError(
            f"architecture mismatch: asked for {arch!r} but {str(source)!r} holds {found!r}"
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise CheckpointError(
            f"{str(source)!r} is a {found} model with {descriptor.input_channels} input and "
            f"{descriptor.output_channels} output channels; gvcore models map RGB to RGB"
        )
    _check_scale(source, scale, int(descriptor.scale))
    model = SpandrelModel(descriptor.to(torch.float32))
    metadata = {"arch": found, "scale": int(descriptor.scale), "source": "spandrel", "label": source.stem}
    return model, metadata
