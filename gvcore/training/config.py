"""What a training run is: :class:`TrainConfig`, its validation and recipe defaults, and the loss recipe.

:func:`resolve_config` checks every option and fills the ``auto`` fields with the recipe of the architecture
(:mod:`gvcore.training.run`'s docstring); :func:`parse_loss` turns a recipe such as ``"l1+gv"`` into weighted
:class:`LossTerm` s from :data:`LOSS_TERMS` (adding a loss means adding an entry there, never editing the
trainer).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from gvcore._validation import check_choice, check_positive_int
from gvcore.loss import GradientVarianceLoss
from gvcore.models import MODEL_NAMES
from gvcore.protocol import Protocol, ProtocolLike

__all__ = ["DEFAULT_GV_WEIGHT", "LOSS_TERMS", "LossTerm", "TrainConfig", "parse_loss", "resolve_config"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Default lambda per pixel loss. MSE: the official 0.01. L1: 0.03, the value the bundled lambda sweep supports
#: (``assets/results/lambda_sweep.csv``, :func:`gvcore.reproduce.sweep.choose_lambda`): the most gradient variance
#: restored among the lambdas that cost under 0.05 dB PSNR; 0.1 already costs 0.12 dB, 1.0 costs 0.42 dB.
DEFAULT_GV_WEIGHT: dict[str, float] = {"mse": 0.01, "l1": 0.03}


@dataclass(frozen=True)
class LossTerm:
    """One term of the objective: ``weight * fn(sr, hr)``, logged under ``loss_{column}`` (unweighted)."""

    name: str
    weight: float
    fn: LossFn
    column: Literal["pixel", "gv"]


def _gv_term(options: dict[str, Any]) -> LossTerm:

    fn = GradientVarianceLoss(patch_size=options["gv_patch_size"], distance=options["gv_distance"])
    return LossTerm("gv", float(options["gv_weight"]), fn, "gv")


#: loss-term name -> constructor from the loss options (``gv_weight``, ``gv_patch_size``, ``gv_distance``).
#: Adding a loss means adding an entry here; the trainer only sums ``weight * fn(sr, hr)`` over the terms.
LOSS_TERMS: dict[str, Callable[[dict[str, Any]], LossTerm]] = {
    "l1": lambda options: LossTerm("l1", 1.0, F.l1_loss, "pixel"),
    "mse": lambda options: LossTerm("mse", 1.0, F.mse_loss, "pixel"),
    "gv": _gv_term,
}


def parse_loss(
    recipe: str,
    gv_weight: float | None = None,
    gv_patch_size: int = 8,
    gv_distance: str = "mse",
) -> list[LossTerm]:
    """Turn a recipe such as ``"l1+gv"`` into its loss terms.

    Args:
        recipe: ``+``-joined names of :data:`LOSS_TERMS` (``l1``, ``mse``, ``l1+gv``, ``mse+gv``, ...).
        gv_weight: lambda; ``None`` = :data:`DEFAULT_GV_WEIGHT` of the recipe's pixel loss.
        gv_patch_size: GV tile side (paper: 8).
        gv_distance: GV distance between variance maps (``gvcore.gradient_variance_loss``'s ``distance``).

    Example:
        >>> [(t.name, t.weight) for t in parse_loss("mse+gv")]
        [('mse', 1.0), ('gv', 0.01)]
    """
    if not isinstance(recipe, str) or not recipe.strip():
        raise ValueError(f"loss must be a recipe like 'l1+gv'; got {recipe!r}")
    names = [part.strip().lower() for part in recipe.split("+")]
    for name in names:
        check_choice("loss term", name, tuple(LOSS_TERMS))
    if len(set(names)) != len(names):
        raise ValueError(f"loss recipe {recipe!r} repeats a term")
    if gv_weight is None:
        pixel = next((n for n in names if n in DEFAULT_GV_WEIGHT), "mse")
        gv_weight = DEFAULT_GV_WEIGHT[pixel]
    if not math.isfinite(gv_weight) or gv_weight < 0:
        raise ValueError(f"gv_weight must be a finite number >= 0; got {gv_weight!r}")
    options = {"gv_weight": gv_weight, "gv_patch_size": gv_patch_size, "gv_distance": gv_distance}
    return [LOSS_TERMS[name](options) for name in names]


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None``/``"auto"`` fields are filled by :func:`resolve_config`.

    Fields that define the result (checked to match on resume): ``arch``, ``scale``, ``loss``, ``gv_*``,
    ``data``, ``protocol``, ``batch_size``, ``crop``, ``seed``, the optimizer and schedule fields,
    ``arch_kwargs``. ``steps`` may be raised on resume (the schedule follows the new ``steps``).
    """

    arch: str
    scale: int
    out: str
    loss: str = "l1"
    data: str = "bundled"
    steps: int = 1000
    batch_size: int = 16
    crop: int = 64
    seed: int = 0
    resume: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gv_weight: float | None = None
    gv_patch_size: int = 8
    gv_distance: str = "mse"
    protocol: ProtocolLike = "standard"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: Literal["auto", "adam", "sgd"] = "auto"
    lr: float | None = None
    schedule: Literal["auto", "constant", "multistep", "cosine"] = "auto"
    milestones: tuple[float, ...] = (1 / 3, 2 / 3)
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float | None = None
    grad_clip: float | None = None
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    log_every: int = 10
    val_every: int = 100
    ckpt_every: int = 100
    val_data: str | None = None
    val_images: int = 4
    val_crop: int = 128
    workers: int = 0
    threads: int | None = None
    label: str | None = None
    progress: bool = True
    #: also keep ``snapshots/step_000500.safetensors``-style checkpoints at every ``ckpt_every``.
    keep_snapshots: bool = False
    #: testing hook: stop abruptly after this many steps (as if killed), without a final checkpoint.
    stop_after: int | None = None


_RESULT_FIELDS = (
    "arch",
    "scale",
    "loss",
    "gv_weight",
    "gv_patch_size",
    "gv_distance",
    "data",
    "protocol",
    "batch_size",
    "crop",
    "seed",
    "arch_kwargs",
    "optimizer",
    "lr",
    "schedule",
    "milestones",
    "gamma",
    "momentum",
    "weight_decay",
    "grad_clip",
)


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Validate ``config`` and fill its ``auto``/``None`` fields with the recipe defaults (a new object)."""
    _check_options(config)
    terms = parse_loss(config.loss, config.gv_weight, config.gv_patch_size, config.gv_distance)
    resolved = _with_recipe_defaults(config, terms)
    _check_numbers(resolved)
    return resolved


def _check_options(config: TrainConfig) -> None:
    """The architecture, the integer settings and every string option, as given (before any default)."""
    check_choice("arch", config.arch, MODEL_NAMES)
    check_positive_int("scale", config.scale)
    for name in ("steps", "batch_size", "crop", "log_every", "gv_patch_size", "val_images", "val_crop"):
        check_positive_int(name, getattr(config, name))
    for name in ("val_every", "ckpt_every", "workers"):
        check_positive_int(name, getattr(config, name), minimum=0)
    if config.crop % config.scale:
        raise ValueError(f"crop must be a multiple of scale {config.scale}; got {config.crop}")
    check_choice("device", config.device, ("auto", "cpu", "cuda"))
    Protocol.parse(config.protocol)
    check_choice("optimizer", config.optimizer, ("auto", "adam", "sgd"))
    check_choice("schedule", config.schedule, ("auto", "constant", "multistep", "cosine"))
    check_choice("amp", config.amp, ("auto", "bf16", "fp16", "off"))


def _with_recipe_defaults(config: TrainConfig, terms: list[LossTerm]) -> TrainConfig:
    """``config`` with every ``auto``/``None`` filled: SGD recipe for VDSR (or ``sgd``), Adam otherwise."""
    gv = next((t for t in terms if t.name == "gv"), None)
    sgd = config.optimizer == "sgd" or (config.optimizer == "auto" and config.arch.startswith("vdsr"))
    return dataclasses.replace(
        config,
        loss="+".join(t.name for t in terms),
        gv_weight=gv.weight if gv is not None else 0.0,
        optimizer="sgd" if sgd else "adam",
        lr=config.lr if config.lr is not None else (0.1 if sgd else 5e-4),
        schedule=config.schedule if config.schedule != "auto" else ("multistep" if sgd else "cosine"),
        weight_decay=config.weight_decay if config.weight_decay is not None else (1e-4 if sgd else 0.0),
        grad_clip=config.grad_clip if config.grad_clip is not None else (0.4 if sgd else 0.0),
        milestones=tuple(float(m) for m in config.milestones),
        val_data=config.val_data if config.val_data is not None else "bundled",
        label=config.label
        or f"{config.arch}-x{config.scale}-{'+'.join(t.name for t in terms)}-s{config.seed}",
        arch_kwargs=_default_arch_kwargs(config),
    )


def _check_numbers(resolved: TrainConfig) -> None:
    """The resolved floating-point settings are finite and in range; ``threads`` positive when given."""
    if not (resolved.lr or 0) > 0 or not math.isfinite(float(resolved.lr or 0)):
        raise ValueError(f"lr must be a finite number > 0; got {resolved.lr!r}")
    if not math.isfinite(float(resolved.grad_clip or 0)) or float(resolved.grad_clip or 0) < 0:
        raise ValueError(
            f"grad_clip must be a finite number >= 0 (0 = no clipping); got {resolved.grad_clip!r}"
        )
    if not math.isfinite(float(resolved.gv_weight or 0)) or float(resolved.gv_weight or 0) < 0:
        raise ValueError(f"gv_weight must be a finite number >= 0; got {resolved.gv_weight!r}")
    if resolved.weight_decay is not None and not 0 <= float(resolved.weight_decay) < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0; got {resolved.weight_decay!r}")
    if resolved.threads is not None:
        check_positive_int("threads", resolved.threads)


def _default_arch_kwargs(config: TrainConfig) -> dict[str, Any]:
    """``arch_kwargs`` with the degradation's interpolation for VDSR.

    A model trained on the official degradation up-samples its LR input bilinearly, as the official VDSR's
    input is made (PAPER.md).
    """
    kwargs = dict(config.arch_kwargs)
    if config.arch.startswith("vdsr") and config.protocol == "official":
        kwargs.setdefault("interpolation", "bilinear")
    return kwargs


def _loss_dict(config: TrainConfig) -> dict[str, Any]:
    pixel = next((n for n in config.loss.split("+") if n != "gv"), "")
    return {
        "recipe": config.loss,
        "pixel": pixel,
        "gv_weight": config.gv_weight if "gv" in config.loss.split("+") else 0.0,
        "gv_patch_size": config.gv_patch_size,
        "gv_distance": config.gv_distance,
    }
