"""The one scoring path: every metric gvcore shows comes from :func:`score_image` / :func:`score_outputs`.

That is every metric of ``gvcore eval``, the reproduction, training validation and the dashboard
(docs/ARCHITECTURE.md, "One scoring path").

Under a protocol (PAPER.md):

- **LR synthesis** -- :func:`gvcore.protocol.prepare_pair`: ``"standard"`` crops HR to a multiple of the scale and
  shrinks it with MATLAB bicubic, rounded to 8 bits; ``"official"`` shrinks the whole image with PIL bilinear
  (the official ``ValidationDataset``) and scores against HR cropped to ``scale * LR``.
- **Baseline** -- :func:`gvcore.protocol.upscale_baseline`: ``bicubic`` (MATLAB) or ``bilinear`` (PIL, the
  official VDSR's own input), on the 8-bit grid.
- **8-bit policy** -- :func:`gvcore.protocol.score_ready`: the standard protocol clamps and rounds outputs to 8 bits (as saving
  a PNG would, BasicSR); the official one scores raw outputs, neither clamped nor rounded (``benchmark.py``).
- **Metrics** -- PSNR/SSIM by :func:`gvcore.evaluate_pair`; ``gv_distance`` is
  :func:`gvcore.gradient_variance_loss` with the paper's settings; ``var_gx``/``var_gy`` are the mean patch
  variances (p = 8, gray, Sobel) of the output's gradient maps; ``var_ratio`` is :func:`variance_ratio`.

**The variance ratio** (one definition, used in ``log.csv``, the evaluation CSV, the lambda sweep and every
page): per image, the mean over the two directions of the output's mean patch variance divided by HR's,
``(var_gx(SR) / var_gx(HR) + var_gy(SR) / var_gy(HR)) / 2``; a data set's ratio is the mean over its images.
1 means as much gradient variance *in total* as HR; L1-trained models sit well below 1. It is the statistic the
GV loss optimises, and it can be raised without adding any structure: noise raises it too (the
``bicubic+noise`` control row, :func:`noise_control`). So it is never read alone:

- ``var_logdev`` -- the mean absolute log10 ratio of patch variances, ``mean |log10((v_SR + e) / (v_HR + e))|``
  over the patches of both directions (p = 8, gray, Sobel; ``e`` = :data:`VARIANCE_FLOOR`, one 8-bit level
  squared, below which a variance is invisible): 0 only when every patch has HR's variance, and it grows with
  variance *added* where HR has none as much as with variance lost. Lower is better.
- ``gmsd`` and ``ms_ssim`` (:mod:`gvcore.perceptual`) -- full-reference metrics the loss does not optimise,
  computed on the outputs as scored and HR, cropped by ``scale`` pixels under the standard protocol (uncropped
  under the official one), on luma. ``ms_ssim`` is NaN for images whose side is below
  :data:`gvcore.perceptual.MS_SSIM_MIN_SIZE` after the crop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gvcore._validation import check_positive_int
from gvcore.eval.inference import default_tile_batch, tiled_forward
from gvcore.loss import gradient_variance_loss
from gvcore.metrics import evaluate_pair
from gvcore.perceptual import MS_SSIM_MIN_SIZE, gmsd, ms_ssim
from gvcore.protocol import Protocol, ProtocolLike, prepare_pair, score_ready, upscale_baseline
from gvcore.variance import variance_maps

__all__ = [
    "SCORE_COLUMNS",
    "NonFiniteOutputError",
    "ScoredImage",
    "gv_distance",
    "noise_control",
    "output_variances",
    "reference_row",
    "run_model",
    "score_image",
    "score_outputs",
    "variance_logdev",
    "variance_ratio",
]

#: the per-output metrics every scored row carries, in display order.
SCORE_COLUMNS: tuple[str, ...] = (
    "psnr",
    "ssim",
    "ms_ssim",
    "gmsd",
    "gv_distance",
    "var_gx",
    "var_gy",
    "var_ratio",
    "var_logdev",
)
#: variances below one 8-bit level squared are invisible: the floor of ``var_logdev``'s log ratios.
VARIANCE_FLOOR = (1.0 / 255.0) ** 2
#: the noise control: Gaussian noise of this standard deviation added to the interpolation baseline.
NOISE_CONTROL_SIGMA = 0.04


def output_variances(x: torch.Tensor) -> tuple[float, float]:
    """Mean patch variance (p = 8, gray, Sobel) of the horizontal and vertical gradient maps of ``(1, C, H, W)``."""
    vx, vy = _maps(x)
    return float(vx.mean()), float(vy.mean())


def _maps(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The patch-variance maps (p = 8, gray, Sobel) every variance column is read from."""
    return variance_maps(x.float(), patch_size=8)


def _logdev(out_maps: tuple[torch.Tensor, ...], hr_maps: tuple[torch.Tensor, ...]) -> float:
    parts = [
        torch.log10((v_out.double() + VARIANCE_FLOOR) / (v_hr.double() + VARIANCE_FLOOR)).abs().flatten()
        for v_out, v_hr in zip(out_maps, hr_maps)
    ]
    return float(torch.cat(parts).mean())


def variance_logdev(out: torch.Tensor, hr: torch.Tensor) -> float:
    """Mean absolute log10 ratio of patch variances, both directions (module docstring): 0 = HR's in every patch.

    Example:
        >>> hr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> variance_logdev(hr, hr)
        0.0
        >>> variance_logdev(hr * 0.5, hr) > 0.5  # a quarter of the variance: about log10(4) = 0.6 per patch
        True
    """
    return _logdev(_maps(out), _maps(hr))


def noise_control(
    baseline: torch.Tensor, protocol: Protocol, sigma: float = NOISE_CONTROL_SIGMA
) -> torch.Tensor:
    """The ``bicubic+noise`` control: the baseline plus Gaussian noise (fixed seed), then :func:`gvcore.protocol.score_ready`.

    It shows what the variance ratio alone cannot tell apart: noise raises the ratio while it costs PSNR and
    raises ``var_logdev``. The noise is the same for every call with the same shape (generator seeded with 0).

    Example:
        >>> base = torch.full((1, 3, 16, 16), 0.5)
        >>> torch.equal(noise_control(base, "standard"), noise_control(base, "standard"))
        True
    """
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(baseline.shape, generator=generator, dtype=torch.float32) * sigma
    return score_ready(baseline.float().cpu() + noise, protocol)


def _perceptual(out: torch.Tensor, hr: torch.Tensor, scale: int, protocol: Protocol) -> dict[str, float]:
    """``gmsd`` and ``ms_ssim`` of one output (module docstring); NaN ``ms_ssim`` for too small an image."""
    crop = scale if protocol == "standard" else 0
    a, b = (t.float()[..., crop : t.shape[-2] - crop, crop : t.shape[-1] - crop] for t in (out, hr))
    small = min(a.shape[-2:]) < MS_SSIM_MIN_SIZE
    return {
        "gmsd": float(gmsd(a, b)[0]),
        "ms_ssim": math.nan if small else float(ms_ssim(a, b)[0]),
    }


def gv_distance(out: torch.Tensor, hr: torch.Tensor, **options: Any) -> float:
    """The GV distance of one output to HR (:func:`gvcore.gradient_variance_loss`).

    The paper's settings unless ``options`` (``patch_size``, ``stride``, ``operator``, ``padding``, ...) say
    otherwise. Two-sided: more variance than HR is error too.
    """
    return float(gradient_variance_loss(out.float(), hr.float(), **options))


def variance_ratio(var_gx: float, var_gy: float, hr_var_gx: float, hr_var_gy: float) -> float:
    """SR/HR gradient-variance ratio of one image (module docstring); a direction flat in HR counts 1.

    Example:
        >>> variance_ratio(0.5, 0.25, 1.0, 1.0)
        0.375
    """
    parts = [(sr / hr if hr > 0 else 1.0) for sr, hr in ((var_gx, hr_var_gx), (var_gy, hr_var_gy))]
    return 0.5 * (parts[0] + parts[1])


def score_outputs(
    outputs: Mapping[str, torch.Tensor],
    hr: torch.Tensor | None,
    scale: int,
    protocol: Protocol,
    extra: Mapping[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
) -> list[dict[str, Any]]:
    """Score outputs that are already :func:`gvcore.protocol.score_ready` against one HR image.

    Args:
        outputs: method name -> ``(1, 3, H, W)`` output (same size as ``hr``).
        hr: ``(1, 3, H, W)`` reference in [0, 1], or ``None`` for LR-only inputs (then only the output
            variances are filled; the other metrics are NaN).
        scale: the SR scale (the standard protocol's border crop).
        protocol: ``"standard"`` or ``"official"``.
        extra: optional metrics beyond :data:`SCORE_COLUMNS`, column name -> ``fn(output, hr) -> float``
            (e.g. :func:`gvcore.eval.lpips.lpips_metrics`); NaN without HR.

    Returns:
        One dict per output, in order: ``{"method", *SCORE_COLUMNS, *extra}``.
    """
    check_positive_int("scale", scale)
    protocol = Protocol.parse(protocol)
    hr_maps = _maps(hr) if hr is not None else None  # once per image, not once per output
    hr_var = (float(hr_maps[0].mean()), float(hr_maps[1].mean())) if hr_maps is not None else None
    rows = []
    for name, out in outputs.items():
        out_maps = _maps(out)  # var_gx, var_gy and var_logdev all read these
        var_gx, var_gy = float(out_maps[0].mean()), float(out_maps[1].mean())
        row: dict[str, Any] = {"method": name, "var_gx": var_gx, "var_gy": var_gy}
        if hr is None or hr_maps is None or hr_var is None:
            row |= dict.fromkeys(("psnr", "ssim", "ms_ssim", "gmsd", "gv_distance", "var_ratio"), math.nan)
            row["var_logdev"] = math.nan
        else:
            pair = evaluate_pair(out.float(), hr.float(), scale, protocol)
            row |= {
                "psnr": float(pair.psnr[0]),
                "ssim": float(pair.ssim[0]),
                **_perceptual(out, hr, scale, protocol),
                "gv_distance": gv_distance(out, hr),
                "var_ratio": variance_ratio(var_gx, var_gy, *hr_var),
                "var_logdev": _logdev(out_maps, hr_maps),
            }
        for column, metric in (extra or {}).items():
            row[column] = math.nan if hr is None else float(metric(out, hr))
        rows.append({"method": name} | {k: row[k] for k in (*SCORE_COLUMNS, *(extra or {}))})
    return rows


def reference_row(hr: torch.Tensor) -> dict[str, Any]:
    """HR's own row (``method`` ``"HR"``): its variances, ``var_ratio`` 1, ``gv_distance`` and ``var_logdev`` 0.

    PSNR, SSIM, MS-SSIM and GMSD of HR against itself are left NaN (not informative). Every table that compares
    outputs shows this row, so the gap to HR can be read there.

    Example:
        >>> row = reference_row(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
        >>> row["method"], row["var_ratio"], math.isnan(row["psnr"])
        ('HR', 1.0, True)
    """
    hr_gx, hr_gy = output_variances(hr)
    row = {"method": "HR", "psnr": math.nan, "ssim": math.nan, "ms_ssim": math.nan, "gmsd": math.nan}
    return row | {"gv_distance": 0.0, "var_gx": hr_gx, "var_gy": hr_gy, "var_ratio": 1.0, "var_logdev": 0.0}


class NonFiniteOutputError(ValueError):
    """A model's output holds NaN or inf: an error, never a blank or clamped score. ``label`` names the model."""

    def __init__(self, label: str, message: str) -> None:
        """Record the model's ``label`` with the ``message``."""
        super().__init__(message)
        self.label = label


@dataclass
class ScoredImage:
    """What :func:`score_image` returns: the pair it scored, the outputs as scored, one row per method."""

    lr: torch.Tensor
    hr: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def run_model(
    model: nn.Module,
    lr: torch.Tensor,
    scale: int,
    tile: int = 256,
    overlap: int = 16,
    tile_batch: int | None = None,
) -> torch.Tensor:
    """``model``'s raw output on ``lr``, tile by tile where its parameters are, in their dtype; float32 on CPU.

    ``tile_batch`` tiles run per forward call (:func:`gvcore.eval.inference.tiled_forward`); ``None`` = 1 on CPU,
    several on CUDA (:func:`gvcore.eval.inference.default_tile_batch`).
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else lr.device
    dtype = param.dtype if param is not None else torch.float32
    batch = default_tile_batch(device) if tile_batch is None else tile_batch
    return tiled_forward(model, lr.to(device=device, dtype=dtype), scale, tile, overlap, batch).float().cpu()


@torch.no_grad()
def score_image(
    hr: torch.Tensor,
    scale: int,
    protocol: ProtocolLike,
    models: Mapping[str, nn.Module] | None = None,
    *,
    lr: torch.Tensor | None = None,
    tile: int = 256,
    overlap: int = 16,
    tile_batch: int | None = None,
    extra: Mapping[str, Callable[[torch.Tensor, torch.Tensor], float]] | None = None,
    noise: bool = False,
) -> ScoredImage:
    """Synthesise the protocol's LR image, run the baseline and ``models``, and score everything against HR.

    Args:
        hr: ``(1, 3, H, W)`` HR image in [0, 1], any size (cropped here as the protocol says); when ``lr`` is
            given, HR already cropped to ``scale * LR``.
        scale: SR factor.
        protocol: ``"standard"`` or ``"official"`` (module docstring).
        models: label -> model mapping ``(1, 3, h, w)`` to ``(1, 3, scale*h, scale*w)``, run where its
            parameters are, tile by tile (:func:`gvcore.eval.inference.tiled_forward`).
        lr: a given LR image (a layout's LR file, :mod:`gvcore.data.layouts`) used as it is instead of
            synthesising one.
        tile: tile side for tiled inference, in LR pixels.
        overlap: overlap between neighbouring tiles, in LR pixels.
        tile_batch: tiles per forward call (:func:`run_model`; ``None`` = 1 on CPU, several on CUDA).
        extra: optional metrics beyond :data:`SCORE_COLUMNS` (:func:`score_outputs`); HR's row leaves them empty.
        noise: also score the ``<baseline>+noise`` control (:func:`noise_control`), right after the baseline.

    Returns:
        :class:`ScoredImage` whose rows are ``HR`` (``gv_distance`` 0, ``var_ratio`` 1, PSNR/SSIM NaN), the
        baseline (``Protocol.baseline``) and each model, in that order.

    Raises:
        NonFiniteOutputError: a model's raw output holds NaN or inf (before any clamping).
    """
    protocol = Protocol.parse(protocol)
    check_positive_int("scale", scale)
    if lr is None:
        lr, hr = prepare_pair(hr, scale, protocol)
    elif tuple(hr.shape[-2:]) != (lr.shape[-2] * scale, lr.shape[-1] * scale):
        raise ValueError(
            f"hr is {hr.shape[-2]}x{hr.shape[-1]} but lr is {lr.shape[-2]}x{lr.shape[-1]}: expected hr = "
            f"{scale} x lr"
        )
    hr, lr = hr.float().cpu(), lr.float().cpu()
    baseline = Protocol.parse(protocol).baseline
    outputs = {baseline: upscale_baseline(lr, scale, protocol)}
    if noise:
        outputs[f"{baseline}+noise"] = noise_control(outputs[baseline], protocol)
    for label, model in (models or {}).items():
        if label in outputs or label == "HR":
            raise ValueError(f"model label {label!r} is taken by a built-in row; rename the model")
        raw = run_model(model, lr, scale, tile, overlap, tile_batch)
        if not bool(torch.isfinite(raw).all()):
            bad = int((~torch.isfinite(raw)).sum())
            raise NonFiniteOutputError(
                label, f"model {label!r} produced {bad} non-finite output value(s) (NaN/inf)"
            )
        outputs[label] = score_ready(raw, protocol)
    rows = [reference_row(hr), *score_outputs(outputs, hr, scale, protocol, extra)]
    return ScoredImage(lr=lr, hr=hr, outputs=outputs, rows=rows)
