"""BasicSR plug-in: ``import gvcore.integrations.basicsr`` registers the GV loss and GV metrics in BasicSR.

After the import, a BasicSR options YAML can name them like any built-in:

- ``LOSS_REGISTRY``: ``GradientVarianceLoss`` (``loss_weight`` times :func:`gvcore.gradient_variance_loss`,
  with every option of :class:`gvcore.GradientVarianceLoss`: ``patch_size``, ``distance``, ``reduction``, ...)
  and ``GVCompositeLoss``, the sum of several BasicSR losses, so that BasicSR's single ``pixel_opt`` slot of
  ``SRModel`` can hold the paper's ``L1 + lambda * GV``.
- ``METRIC_REGISTRY``: ``calculate_gv_distance`` (:func:`gvcore.eval.scoring.gv_distance`, lower is better) and
  ``calculate_gv_variance_ratio`` (:func:`gvcore.eval.scoring.variance_ratio`, 1 = as much gradient variance as
  the ground truth). They take what BasicSR's ``calculate_psnr`` takes: 8-bit BGR ``img``/``img2``,
  ``crop_border``, ``input_order`` and ``test_y_channel``.

The metrics are computed by :mod:`gvcore.eval.scoring`, the scoring path behind every other number of the project.

BasicSR 1.4.2, the current release, imports ``torchvision.transforms.functional_tensor``, which torchvision
removed in 0.17; when that module is missing, :func:`install_torchvision_shim` maps it to
``torchvision.transforms.functional`` (which holds the same functions) before BasicSR is imported.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gvcore.color import rgb_to_y
from gvcore.eval.scoring import gv_distance, output_variances, variance_ratio
from gvcore.loss import GradientVarianceLoss as _GVLoss

__all__ = [
    "GVCompositeLoss",
    "GradientVarianceLoss",
    "calculate_gv_distance",
    "calculate_gv_variance_ratio",
    "install_torchvision_shim",
    "register",
]

_SHIMMED_MODULE = "torchvision.transforms.functional_tensor"


def install_torchvision_shim() -> bool:
    """Make ``torchvision.transforms.functional_tensor`` importable again, only where it is missing.

    Returns:
        ``True`` if the shim was installed (the module was missing), ``False`` if torchvision has it.
    """
    if _SHIMMED_MODULE in sys.modules:
        return False
    try:
        importlib.import_module(_SHIMMED_MODULE)
    except ModuleNotFoundError as err:
        if err.name != _SHIMMED_MODULE:
            raise
        sys.modules[_SHIMMED_MODULE] = importlib.import_module("torchvision.transforms.functional")
        return True
    return False


try:
    install_torchvision_shim()
    from basicsr.losses import build_loss
    from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY
except ModuleNotFoundError as _err:  # pragma: no cover - exercised only without basicsr
    raise ImportError(
        f"gvcore.integrations.basicsr needs BasicSR and its modules (missing: {_err.name}): "
        "python3 -m pip install -r requirements-basicsr.txt && "
        "python3 -m pip install --no-deps --no-build-isolation basicsr==1.4.2"
    ) from _err


def _check_loss_weight(loss_weight: Any) -> float:
    if (
        isinstance(loss_weight, bool)
        or not isinstance(loss_weight, (int, float))
        or not math.isfinite(loss_weight)
    ):
        raise ValueError(f"loss_weight must be a finite number; got {loss_weight!r}")
    return float(loss_weight)


class GradientVarianceLoss(_GVLoss):
    """The GV loss with BasicSR's loss conventions: ``loss_weight * gvcore.gradient_variance_loss(pred, target)``.

    BasicSR builds it from ``{"type": "GradientVarianceLoss", "loss_weight": ..., **options}``; the options are
    validated here, so a wrong YAML fails when the model is built, not at the first step.

    Args:
        loss_weight: factor applied to the loss (BasicSR convention; the paper's lambda).
        **options: any option of :class:`gvcore.GradientVarianceLoss` (``patch_size``, ``reduction``
            ``"mean"``/``"sum"``/``"none"``, ``distance``, ``unbiased``, ``padding``, ``operator``, ``gray``,
            ``stride``, ``relative``, ``eps``, ``patch_sizes``, ``charbonnier_eps``, ``backend``).

    Raises:
        ValueError: a non-finite ``loss_weight`` or an invalid option (the message names it).
        TypeError: an unknown option name.

    Shape:
        - pred, target: ``(B, C, H, W)`` RGB in [0, 1] (BasicSR's tensors)
        - output: ``()`` or ``(B,)`` for ``reduction="none"``
    """

    def __init__(self, loss_weight: float = 1.0, **options: Any) -> None:
        """Validate ``loss_weight`` and the GV options (see the class docstring)."""
        super().__init__(**options)
        self.loss_weight = _check_loss_weight(loss_weight)

    def forward(  # type: ignore[override]
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """``loss_weight`` times the GV loss of ``pred`` against ``target``.

        Args:
            pred: ``(B, C, H, W)`` network output.
            target: ground truth of the same shape.
            weight: BasicSR's element-wise weight; not defined for a loss over tile variances, so it must be
                ``None``.
            **kwargs: ignored, as BasicSR's own losses ignore extra keyword arguments.

        Returns:
            The weighted loss.

        Raises:
            ValueError: ``weight`` is given.
        """
        if weight is not None:
            raise ValueError(
                "GradientVarianceLoss does not support element-wise weight (it compares tile variances)"
            )
        return self.loss_weight * super().forward(pred, target)

    def extra_repr(self) -> str:
        """The options, led by ``loss_weight``."""
        return f"loss_weight={self.loss_weight!r}, {super().extra_repr()}"


class GVCompositeLoss(nn.Module):
    """The sum of BasicSR losses, each built from its own options dict by BasicSR's ``build_loss``.

    BasicSR's ``SRModel`` has one ``pixel_opt`` slot; this puts ``L1 + lambda * GV`` into it:
    ``{"type": "GVCompositeLoss", "losses": [{"type": "L1Loss"}, {"type": "GradientVarianceLoss",
    "loss_weight": 0.03}]}``.

    Args:
        losses: non-empty list of BasicSR loss options (each with its ``type`` and ``loss_weight``).
        loss_weight: factor applied to the sum.

    Raises:
        ValueError: an empty list, an entry that is not an options dict with a ``type``, a bad ``loss_weight``.
    """

    def __init__(self, losses: Sequence[Mapping[str, Any]], loss_weight: float = 1.0) -> None:
        """Build every listed loss (see the class docstring)."""
        super().__init__()
        if isinstance(losses, (str, Mapping)) or not isinstance(losses, Sequence) or not losses:
            raise ValueError(f"losses must be a non-empty list of loss options; got {losses!r}")
        for i, item in enumerate(losses):
            if not isinstance(item, Mapping) or "type" not in item:
                raise ValueError(f"losses[{i}] must be a loss options dict with a 'type'; got {item!r}")
        self.loss_weight = _check_loss_weight(loss_weight)
        self.losses = nn.ModuleList(build_loss(dict(item)) for item in losses)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``loss_weight`` times the sum of the listed losses of ``pred`` against ``target``.

        Args:
            pred: ``(B, C, H, W)`` network output.
            target: ground truth of the same shape.
            **kwargs: passed on to every listed loss.

        Returns:
            The weighted sum.
        """
        total = sum(
            (loss(pred, target, **kwargs) for loss in self.losses), torch.zeros((), device=pred.device)
        )
        return self.loss_weight * total


def _to_rgb_tensor(img: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool) -> torch.Tensor:
    """A BasicSR metric input (``HWC``/``CHW`` BGR or gray, range [0, 255]) as a ``(1, C, H, W)`` tensor in [0, 1].

    Color images are returned as RGB, or as BT.601 luma (:func:`gvcore.rgb_to_y` / 255) with ``test_y_channel``.
    """
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be one of 'HWC', 'CHW'; got {input_order!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer; got {crop_border!r}")
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[..., None] if input_order == "HWC" else arr[None]
    if arr.ndim != 3:
        raise ValueError(f"img must be a 2-D or 3-D array; got shape {np.shape(img)}")
    if input_order == "HWC":
        arr = arr.transpose(2, 0, 1)
    if arr.shape[0] not in (1, 3):
        raise ValueError(f"img must have 1 or 3 channels; got {arr.shape[0]}")
    x = torch.from_numpy(np.ascontiguousarray(arr[::-1] / 255.0)).unsqueeze(0)  # BGR -> RGB, [0, 1]
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and x.shape[1] == 3:
        x = rgb_to_y(x) / 255.0
    return x.float()


def _pair(img: np.ndarray, img2: np.ndarray, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if np.shape(img) != np.shape(img2):
        raise ValueError(f"img and img2 must have the same shape; got {np.shape(img)} and {np.shape(img2)}")
    return _to_rgb_tensor(img, **kwargs), _to_rgb_tensor(img2, **kwargs)


def calculate_gv_distance(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    **kwargs: Any,
) -> float:
    """GV distance of ``img`` (the SR output) to ``img2`` (the ground truth): :func:`gvcore.eval.scoring.gv_distance`.

    The paper's GV (p = 8, gray, Sobel, unbiased, MSE) of the two images in [0, 1]; lower is better (declare
    ``better: lower`` in the YAML), 0 for identical images.

    Args:
        img: SR image, BasicSR layout: ``(H, W, C)`` BGR (or ``(C, H, W)``), range [0, 255] (uint8 or float).
        img2: ground-truth image of the same shape.
        crop_border: pixels dropped at each edge before scoring.
        input_order: ``"HWC"`` or ``"CHW"``.
        test_y_channel: score the BT.601 luma instead of the RGB image.
        **kwargs: other metric options BasicSR passes (e.g. ``better``); ignored.

    Returns:
        The GV distance.

    Raises:
        ValueError: mismatched shapes, a bad ``crop_border``/``input_order``, an image smaller than 8 x 8 after
            cropping.
    """
    sr, hr = _pair(img, img2, crop_border=crop_border, input_order=input_order, test_y_channel=test_y_channel)
    return gv_distance(sr, hr)


def calculate_gv_variance_ratio(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    **kwargs: Any,
) -> float:
    """SR/HR gradient-variance ratio of ``img`` against ``img2``: :func:`gvcore.eval.scoring.variance_ratio`.

    The mean over the two directions of the SR image's mean patch variance (p = 8) divided by the ground
    truth's; 1 means as much gradient variance as the ground truth, L1-trained models sit below 1.

    Args:
        img: SR image, BasicSR layout: ``(H, W, C)`` BGR (or ``(C, H, W)``), range [0, 255] (uint8 or float).
        img2: ground-truth image of the same shape.
        crop_border: pixels dropped at each edge before scoring.
        input_order: ``"HWC"`` or ``"CHW"``.
        test_y_channel: score the BT.601 luma instead of the RGB image.
        **kwargs: other metric options BasicSR passes (e.g. ``better``); ignored.

    Returns:
        The variance ratio.

    Raises:
        ValueError: mismatched shapes, a bad ``crop_border`` or ``input_order``.
    """
    sr, hr = _pair(img, img2, crop_border=crop_border, input_order=input_order, test_y_channel=test_y_channel)
    return variance_ratio(*output_variances(sr), *output_variances(hr))


def _register(registry: Any, obj: Any) -> None:
    """Register ``obj`` under its name, once: re-importing this module (or a reload) is a no-op."""
    name = obj.__name__
    if name in registry:
        existing = registry.get(name)
        if getattr(existing, "__module__", None) == __name__:
            return
        raise ImportError(
            f"BasicSR's {registry._name} registry already holds another {name!r} ({existing!r})"
        )
    registry.register(obj)


def register() -> None:
    """Register the GV losses and metrics in BasicSR's registries (done on import; calling again is a no-op)."""
    entries: tuple[tuple[Any, Any], ...] = (
        (LOSS_REGISTRY, GradientVarianceLoss),
        (LOSS_REGISTRY, GVCompositeLoss),
        (METRIC_REGISTRY, calculate_gv_distance),
        (METRIC_REGISTRY, calculate_gv_variance_ratio),
    )
    for registry, obj in entries:
        _register(registry, obj)


register()
