"""gvcore: the Gradient Variance loss and everything needed to reproduce its paper.

Gradient maps, patch-variance maps, the Gradient Variance loss, SR metrics, MATLAB-exact bicubic, image I/O,
and the SR models, training and evaluation that reproduce Abrahamyan et al., ICASSP 2022.

Public names are imported lazily (PEP 562), so ``import gvcore`` is cheap and a command-line tool or the
dashboard only pays for what it uses.

Example:
    >>> import torch, gvcore
    >>> hr = torch.rand(2, 3, 32, 32)
    >>> gvcore.gradient_variance_loss(hr, hr).item()
    0.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "GRAY_WEIGHTS": "gvcore.color",
    "to_gray": "gvcore.color",
    "rgb_to_y": "gvcore.color",
    "gradient_maps": "gvcore.gradients",
    "patch_variance": "gvcore.variance",
    "variance_maps": "gvcore.variance",
    "gradient_variance_loss": "gvcore.loss",
    "GradientVarianceLoss": "gvcore.loss",
    "psnr": "gvcore.metrics",
    "ssim": "gvcore.metrics",
    "evaluate_pair": "gvcore.metrics",
    "quantize_8bit": "gvcore.protocol",
    "gmsd": "gvcore.perceptual",
    "ms_ssim": "gvcore.perceptual",
    "imresize": "gvcore.resize",
    "load_image": "gvcore.io",
    "save_image": "gvcore.io",
    "ImageLoadError": "gvcore.io",
    "build_model": "gvcore.models",
    "MODELS": "gvcore.models",
    "save_checkpoint": "gvcore.checkpoint.store",
    "load_model": "gvcore.checkpoint.store",
    "CheckpointError": "gvcore.checkpoint.meta",
    "TrainConfig": "gvcore.training.config",
    "train": "gvcore.training.run",
    "evaluate": "gvcore.eval.evaluate",
    "bundled_image_paths": "gvcore.data.bundled",
    "build_atlas": "gvcore.eval.atlas",
}

__all__ = [
    "GRAY_WEIGHTS",
    "MODELS",
    "CheckpointError",
    "GradientVarianceLoss",
    "ImageLoadError",
    "TrainConfig",
    "__version__",
    "build_atlas",
    "build_model",
    "bundled_image_paths",
    "evaluate",
    "evaluate_pair",
    "gmsd",
    "gradient_maps",
    "gradient_variance_loss",
    "imresize",
    "load_image",
    "load_model",
    "ms_ssim",
    "patch_variance",
    "psnr",
    "quantize_8bit",
    "rgb_to_y",
    "save_checkpoint",
    "save_image",
    "ssim",
    "to_gray",
    "train",
    "variance_maps",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from gvcore.checkpoint.meta import CheckpointError
    from gvcore.checkpoint.store import load_model, save_checkpoint
    from gvcore.color import GRAY_WEIGHTS, rgb_to_y, to_gray
    from gvcore.data.bundled import bundled_image_paths
    from gvcore.eval.atlas import build_atlas
    from gvcore.eval.evaluate import evaluate
    from gvcore.gradients import gradient_maps
    from gvcore.io import ImageLoadError, load_image, save_image
    from gvcore.loss import GradientVarianceLoss, gradient_variance_loss
    from gvcore.metrics import evaluate_pair, psnr, ssim
    from gvcore.models import MODELS, build_model
    from gvcore.perceptual import gmsd, ms_ssim
    from gvcore.protocol import quantize_8bit
    from gvcore.resize import imresize
    from gvcore.training.config import TrainConfig
    from gvcore.training.run import train
    from gvcore.variance import patch_variance, variance_maps


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gvcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
