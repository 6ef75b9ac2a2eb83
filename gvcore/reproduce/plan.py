"""The reproduction's grid: :class:`ReproPlan` (:data:`PLAN`, :data:`SMOKE_PLAN`), its runs (:class:`RunSpec`).

:mod:`gvcore.reproduce.run`'s docstring says what the grid is and why; :func:`plan_value` reads a per-preset
setting and :data:`SECONDS_PER_STEP` (measured) orders the runs longest first and estimates the wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gvcore.protocol import ProtocolLike

__all__ = ["PLAN", "SECONDS_PER_STEP", "SMOKE_PLAN", "ReproPlan", "RunSpec", "plan_value"]


@dataclass(frozen=True)
class ReproPlan:
    """The reproduction grid and its budget (see the module docstring)."""

    presets: tuple[str, ...] = ("vdsr-lite", "edsr-lite", "espcn")
    scales: tuple[int, ...] = (2, 4)
    #: optimizer steps per preset or ``preset-x{scale}`` (ESPCN is ~10x cheaper per step and learns slowest;
    #: x4 needs more steps than x2 to leave bicubic by the same margin).
    steps: tuple[tuple[str, int], ...] = (
        ("vdsr-lite-x2", 600),
        ("vdsr-lite-x4", 1000),
        ("edsr-lite-x2", 800),
        ("edsr-lite-x4", 1600),
        ("espcn-x2", 2000),
        ("espcn-x4", 6000),
    )
    #: learning-rate overrides per preset (others: the recipe default of gvcore.training.run).
    lr: tuple[tuple[str, float], ...] = (
        ("vdsr-lite", 1e-3),
        ("edsr-lite", 1e-3),
        ("espcn-x2", 2e-3),
        ("espcn-x4", 3e-3),
    )
    #: optimizer overrides per preset (module docstring: Adam for VDSR-lite).
    optimizer: tuple[tuple[str, str], ...] = (("vdsr-lite", "adam"),)
    batch_size: int = 16
    crop: int = 64
    seeds: tuple[int, ...] = (0, 1, 2)
    official_seeds: tuple[int, ...] = (0,)
    #: presets also trained on the official degradation: the official code's own model (VDSR) and ESPCN (the
    #: cheapest); EDSR-lite is left out for the 2-core budget.
    official_presets: tuple[str, ...] = ("vdsr-lite", "espcn")
    sweep_preset: str = "espcn"
    sweep_scales: tuple[int, ...] = (2, 4)
    sweep_seeds: tuple[int, ...] = (0,)
    sweep_lambdas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    #: bundled train images held out of the sweep's training and used to score it (structure-rich).
    sweep_holdout: tuple[str, ...] = ("coffee.png", "brick.png", "astronaut.png", "rocket.jpg")
    psnr_tolerance: float = 0.05
    log_every: int = 10
    val_every: int = 250
    train_images: int | None = None  # None = the whole bundled train split
    eval_images: int | None = None  # None = the whole bundled test split
    image_crop: int | None = None  # centre-crop the images used (smoke only)
    bootstrap_resamples: int = 10_000


#: the shipped reproduction (measured budget: see bench/README.md and the report in reproduce_meta.json).
PLAN = ReproPlan()
#: CI's few-step version of the same pipeline.
SMOKE_PLAN = ReproPlan(
    steps=(("vdsr-lite", 2), ("edsr-lite", 2), ("espcn", 3)),
    official_presets=("vdsr-lite", "edsr-lite", "espcn"),
    batch_size=2,
    crop=32,
    seeds=(0, 1),
    sweep_seeds=(0,),
    sweep_lambdas=(0.1, 1.0),
    sweep_holdout=("coffee.png", "brick.png"),
    log_every=1,
    val_every=2,
    train_images=2,
    eval_images=2,
    image_crop=96,
    bootstrap_resamples=1000,
)


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: preset, scale, loss recipe, seed, lambda, whether a sweep point, degradation."""

    arch: str
    scale: int
    loss: str
    seed: int
    gv_weight: float = 0.0
    sweep: bool = False
    protocol: ProtocolLike = "standard"

    @property
    def name(self) -> str:
        """File-friendly run name, e.g. ``espcn-x2-l1-gv-s0`` (``-w0.03`` for sweep points, ``-official``)."""
        weight = f"-w{self.gv_weight:g}" if self.sweep else ""
        degradation = "-official" if self.protocol == "official" else ""
        return f"{self.arch}-x{self.scale}-{self.loss.replace('+', '-')}{weight}{degradation}-s{self.seed}"

    @property
    def label(self) -> str:
        """Checkpoint label, e.g. ``espcn-x2-l1+gv-s0`` (`` λ=0.03`` for sweep points, `` official``)."""
        weight = f" λ={self.gv_weight:g}" if self.sweep else ""
        degradation = " official" if self.protocol == "official" else ""
        return f"{self.arch}-x{self.scale}-{self.loss}{weight}{degradation}-s{self.seed}"

    @property
    def folder(self) -> str:
        """Sub-folder of ``checkpoints/`` the run ships in."""
        return "sweep" if self.sweep else ("official" if self.protocol == "official" else "")


#: seconds per L1 training step, 1 thread, batch 16, crop 64 (bench/bench_train_step.py on this 2-core box);
#: GV adds <= 10 % (same bench). Used to schedule the longest runs first and to print an estimate.
SECONDS_PER_STEP: dict[tuple[str, int], float] = {
    ("vdsr-lite", 2): 0.31,
    ("vdsr-lite", 4): 0.31,
    ("edsr-lite", 2): 0.19,
    ("edsr-lite", 4): 0.13,
    ("espcn", 2): 0.044,
    ("espcn", 4): 0.015,
}


def _cost(spec: RunSpec, plan: ReproPlan) -> float:
    """Estimated training seconds of one run (1 thread, batch 16, crop 64 scaled by the plan's)."""
    per_step = SECONDS_PER_STEP.get((spec.arch, spec.scale), 0.3) * (1.1 if "gv" in spec.loss else 1.0)
    return (
        per_step
        * plan_value(plan.steps, spec.arch, spec.scale)
        * plan.batch_size
        / 16
        * (plan.crop / 64) ** 2
    )


def plan_value(table: tuple[tuple[str, Any], ...], arch: str, scale: int, default: Any = None) -> Any:
    """A per-preset plan setting: the ``arch-x{scale}`` entry, else the ``arch`` entry, else ``default``."""
    entries = dict(table)
    return entries.get(f"{arch}-x{scale}", entries.get(arch, default))


def _grid(plan: ReproPlan, loss: str, weight: float) -> list[RunSpec]:
    """The main grid for one loss: every preset and scale, standard seeds and official seeds."""
    specs = [
        RunSpec(a, s, loss, seed, weight) for a in plan.presets for s in plan.scales for seed in plan.seeds
    ]
    specs += [
        RunSpec(a, s, loss, seed, weight, protocol="official")
        for a in plan.official_presets
        for s in plan.scales
        for seed in plan.official_seeds
    ]
    return specs
