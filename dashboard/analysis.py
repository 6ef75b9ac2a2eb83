"""Display adapters behind the pages: maps for display, pooling, colour scaling, crops, degradations, tables.

No metric, LR synthesis or ratio is computed here: every number a page shows comes from
:mod:`gvcore.eval.scoring` (the path ``gvcore eval`` uses); this module only reshapes it for display.
Inputs are ``(1, C, H, W)`` float tensors in [0, 1]; outputs are numpy arrays or pandas tables ready for
:mod:`dashboard.figures`. Nothing here calls ``st.*`` (the cached wrappers live in :mod:`dashboard.loaders`).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "DEFAULT_DIFFERENCE_FACTOR",
    "DEGRADATIONS",
    "DIFFERENCE_CONVENTION",
    "DIFFERENCE_FACTORS",
    "GradientSet",
    "GradientSettings",
    "MapSet",
    "amplified_difference",
    "compute_gradients",
    "compute_maps",
    "compute_variances",
    "deficit_region",
    "degrade",
    "difference_image",
    "error_map",
    "gray_uint8",
    "log_range_mask",
    "maps_from",
    "mean_abs_difference",
    "png_bytes",
    "pool_for_display",
    "resize_for_display",
    "rows_frame",
    "signed_difference",
    "super_resolve",
    "to_uint8",
    "variance_deficit",
    "variance_summary",
]

Degradation = Literal["bicubic down/up", "gaussian blur", "jpeg", "gaussian noise"]
#: In-app degradations for the Variance explorer's second image, with their parameter's meaning.
DEGRADATIONS: dict[str, str] = {
    "bicubic down/up": "scale factor",
    "gaussian blur": "sigma (pixels)",
    "jpeg": "quality (1-95)",
    "gaussian noise": "sigma (8-bit levels)",
}
_EPS = 1e-6


@dataclass(frozen=True)
class GradientSettings:
    """How gradient and patch-variance maps are computed (defaults: the paper's)."""

    patch_size: int = 8
    stride: int | None = None
    operator: str = "sobel"
    gray: bool = True
    unbiased: bool = True
    padding: str = "zeros"

    def gradient_kwargs(self) -> dict[str, object]:
        """These settings as :func:`gvcore.gradients.gradient_maps` options (operator, padding, gray)."""
        return {"operator": self.operator, "padding": self.padding, "gray": self.gray}

    def as_dict(self) -> dict[str, object]:
        """All settings as a plain dict (field name -> value)."""
        return asdict(self)

    def loss_kwargs(self) -> dict[str, object]:
        """These settings as :func:`gvcore.gradient_variance_loss` options (the GV distance under them)."""
        return {
            "patch_size": self.patch_size,
            "stride": self.stride,
            "unbiased": self.unbiased,
            **self.gradient_kwargs(),
        }


@dataclass(frozen=True)
class MapSet:
    """Gradient and patch-variance maps of one image, as float32 numpy arrays of shape ``(C, h, w)``."""

    gx: np.ndarray
    gy: np.ndarray
    magnitude: np.ndarray
    vx: np.ndarray
    vy: np.ndarray

    @property
    def variance(self) -> np.ndarray:
        """Mean of the two directions' variance maps (what the deficit map and histograms use by default)."""
        return 0.5 * (self.vx + self.vy)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 (clamped and rounded, gray repeated to RGB)."""
    # clamp makes the one float copy; scaling and rounding then work in place (a 16 MP image: 192 MB, not 576 MB)
    img = x.detach()[0].clamp(0, 1).mul_(255).round_().to(torch.uint8).cpu()
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img.permute(1, 2, 0).contiguous().numpy()


@torch.no_grad()
def super_resolve(
    model: torch.nn.Module, lr: torch.Tensor, scale: int, protocol: str = "standard", tile: int = 192
) -> torch.Tensor:
    """A model's output on ``lr`` as the protocol scores it: ``(1, 3, sH, sW)`` float32 on the CPU.

    :func:`gvcore.protocol.score_ready` makes it 8-bit for ``"standard"`` and leaves it raw for ``"official"``;
    the model runs tile by tile on its own device.
    """
    from gvcore.eval.scoring import run_model
    from gvcore.protocol import score_ready

    return score_ready(run_model(model, lr, scale, tile, 16), protocol)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GradientSet:
    """Gradient maps of one image, float32 numpy arrays of shape ``(C, H, W)``: what a patch size does not change."""

    gx: np.ndarray
    gy: np.ndarray
    magnitude: np.ndarray


def compute_gradients(x: torch.Tensor, settings: GradientSettings) -> GradientSet:
    """Gradient maps and magnitude of ``(1, C, H, W)`` under ``settings`` (operator, padding, gray only)."""
    from gvcore.gradients import gradient_maps

    gx, gy = gradient_maps(x.float(), **settings.gradient_kwargs())  # type: ignore[arg-type]

    def arr(t: torch.Tensor) -> np.ndarray:
        return t[0].detach().float().cpu().numpy()

    return GradientSet(gx=arr(gx), gy=arr(gy), magnitude=arr(torch.hypot(gx, gy)))


def compute_variances(gradients: GradientSet, settings: GradientSettings) -> tuple[np.ndarray, np.ndarray]:
    """Patch-variance maps ``(C, h, w)`` of Gx and Gy under ``settings`` (patch size, stride, estimator).

    :func:`gvcore.variance.patch_variance` of the gradient maps; the arrays are read, never modified.
    """
    from gvcore.variance import patch_variance

    def variance(g: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(g)[None]
        v = patch_variance(t, settings.patch_size, settings.stride, settings.unbiased)
        return v[0].detach().float().cpu().numpy()

    return variance(gradients.gx), variance(gradients.gy)


def maps_from(gradients: GradientSet, variances: tuple[np.ndarray, np.ndarray]) -> MapSet:
    """A :class:`MapSet` made of gradient maps and their patch variances (shared, not copied)."""
    return MapSet(
        gx=gradients.gx, gy=gradients.gy, magnitude=gradients.magnitude, vx=variances[0], vy=variances[1]
    )


def compute_maps(x: torch.Tensor, settings: GradientSettings) -> MapSet:
    """Gradient maps, gradient magnitude and patch-variance maps of one image under ``settings``."""
    gradients = compute_gradients(x, settings)
    return maps_from(gradients, compute_variances(gradients, settings))


def variance_summary(maps: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of summary statistics per named variance map (mean, median, percentiles, share of flat tiles)."""
    rows = []
    for name, values in maps.items():
        v = np.asarray(values, dtype=np.float64).ravel()
        rows.append(
            {
                "map": name,
                "patches": v.size,
                "mean": v.mean(),
                "median": np.median(v),
                "p05": np.percentile(v, 5),
                "p95": np.percentile(v, 95),
                "max": v.max(),
                "flat share (<1e-3)": float((v < 1e-3).mean()),
            }
        )
    return pd.DataFrame(rows)


def variance_deficit(v_sr: np.ndarray, v_hr: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Per-patch ``log10((V_sr + eps) / (V_hr + eps))``: negative where the SR image lost gradient variance."""
    if v_sr.shape != v_hr.shape:
        raise ValueError(f"variance maps differ in shape: {v_sr.shape} vs {v_hr.shape}")
    return np.log10((v_sr.astype(np.float64) + eps) / (v_hr.astype(np.float64) + eps)).astype(np.float32)


def error_map(sr: torch.Tensor, hr: torch.Tensor) -> np.ndarray:
    """Absolute error averaged over channels, ``(H, W)`` float32, on the 8-bit scale."""
    return (sr - hr).abs().mean(dim=1)[0].mul(255).float().cpu().numpy()


def rows_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Scored rows (:func:`gvcore.eval.scoring.score_outputs` / ``score_image``) as a table.

    The metric columns follow the order of :data:`gvcore.eval.scoring.SCORE_COLUMNS`.
    """
    from gvcore.eval.scoring import SCORE_COLUMNS

    return pd.DataFrame(rows, columns=["method", *SCORE_COLUMNS])


def deficit_region(v_hr: np.ndarray, v_out: np.ndarray, tiles: int) -> tuple[int, int, float]:
    """The ``tiles x tiles`` window of patch-variance maps where ``sum(V_HR - V_out)`` is largest.

    Args:
        v_hr: ``(h, w)`` patch-variance map of the HR image.
        v_out: ``(h, w)`` patch-variance map of an output, same patch size and shape as ``v_hr``.
        tiles: window side in patches (clipped to the map).

    Returns:
        ``(row, col, deficit)``: the window's top-left patch and its summed deficit.
    """
    if v_hr.shape != v_out.shape:
        raise ValueError(f"variance maps differ in shape: {v_hr.shape} vs {v_out.shape}")
    deficit = v_hr.astype(np.float64) - v_out.astype(np.float64)
    h, w = deficit.shape
    th, tw = min(tiles, h), min(tiles, w)
    integral = np.pad(deficit.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[th:, tw:] - integral[:-th, tw:] - integral[th:, :-tw] + integral[:-th, :-tw]
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(row), int(col), float(sums[row, col])


def mean_abs_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean ``|a - b|`` over pixels and channels, in 8-bit levels (what :func:`amplified_difference` draws)."""
    return float((a.float() - b.float()).abs().mean()) * 255.0


def amplified_difference(a: torch.Tensor, b: torch.Tensor, factor: float) -> np.ndarray:
    """``a - b`` of two ``(1, C, H, W)`` images drawn by :func:`difference_image`: an ``(H, W)`` uint8 map.

    Grey means equal, light means ``a`` brighter.
    """
    return difference_image((a.float() - b.float()).mean(dim=1)[0].cpu().numpy() * 255.0, factor)


def signed_difference(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left - right`` of two ``(H, W, 3)`` uint8 images, mean over RGB, in 8-bit levels: ``(H, W)`` float32.

    What :func:`difference_image` draws (Compare's before/after difference view).

    Example:
        >>> a = np.full((1, 2, 3), 100, np.uint8)
        >>> b = np.array([[[100, 100, 100], [103, 100, 94]]], np.uint8)
        >>> signed_difference(a, b).tolist()
        [[0.0, 1.0]]
    """
    if left.shape != right.shape:
        raise ValueError(f"left and right must have the same shape; got {left.shape} and {right.shape}")
    return (left.astype(np.float32) - right.astype(np.float32)).mean(axis=-1)


#: the amplification factors a page offers for a difference image, and the one it starts at
DIFFERENCE_FACTORS: tuple[int, ...] = (1, 5, 10, 20, 50)
DEFAULT_DIFFERENCE_FACTOR = 10

#: how every page draws a difference ``a - b`` (``str.format`` with ``a``, ``b``, ``factor``)
DIFFERENCE_CONVENTION = (
    "({a} - {b}) x{factor}, mean over RGB on the 8-bit scale, drawn as 128 + that, clipped to 0..255: grey = "
    "identical, light = {a} brighter, dark = {a} darker."
)


def difference_image(signed: np.ndarray, factor: float) -> np.ndarray:
    """An ``(H, W)`` signed difference in 8-bit levels drawn by :data:`DIFFERENCE_CONVENTION`: ``(H, W)`` uint8.

    The one way every page draws a difference: ``128 + factor * signed`` (mid grey = identical), clipped.

    Example:
        >>> difference_image(np.array([[0.0, 1.0, -2.0, 100.0]]), 10).tolist()
        [[128, 138, 108, 255]]
    """
    if isinstance(factor, bool) or not factor > 0:
        raise ValueError(f"factor must be positive; got {factor!r}")
    return np.clip(128.0 + factor * np.asarray(signed, dtype=np.float32), 0, 255).round().astype(np.uint8)


def degrade(x: torch.Tensor, kind: str, amount: float, seed: int = 0) -> torch.Tensor:
    """A degraded copy of ``x`` (same size) for the deficit map: bicubic down/up, blur, JPEG or noise.

    Args:
        x: ``(1, 3, H, W)`` in [0, 1].
        kind: a key of :data:`DEGRADATIONS`.
        amount: the degradation's parameter (see :data:`DEGRADATIONS`).
        seed: noise seed (the result is deterministic).
    """
    from gvcore.resize import imresize

    if kind not in DEGRADATIONS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, DEGRADATIONS))}; got {kind!r}")
    h, w = x.shape[-2:]
    if kind == "bicubic down/up":
        factor = max(float(amount), 1.0)
        small = imresize(x, size=(max(round(h / factor), 1), max(round(w / factor), 1)))
        return imresize(small, size=(h, w)).clamp(0, 1)
    if kind == "gaussian blur":
        sigma = max(float(amount), 0.1)
        radius = max(int(3 * sigma + 0.5), 1)
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k = torch.exp(-(t**2) / (2 * sigma**2))
        k = k / k.sum()
        c = x.shape[1]
        padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        out = F.conv2d(padded, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c).clamp(0, 1)
    if kind == "jpeg":
        quality = int(min(max(amount, 1), 95))
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(x)).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        arr = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * (float(amount) / 255.0)
    return (x + noise).clamp(0, 1)


def pool_for_display(values: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Average-pool a 2-D map by an integer factor so both sides are ``<= max_side``; return it and the factor."""
    h, w = values.shape
    factor = max(1, int(np.ceil(max(h, w) / max_side)))
    if factor == 1:
        return values, 1
    hh, ww = h // factor * factor, w // factor * factor
    pooled = values[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))
    return pooled.astype(np.float32), factor


def resize_for_display(image: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Shrink an ``(H, W, 3)`` uint8 image by an integer factor (area average) to fit ``max_side``."""
    h, w = image.shape[:2]
    factor = max(1, int(np.ceil(max(h, w) / max_side)))
    if factor == 1:
        return image, 1
    small = Image.fromarray(image).reduce(factor)
    return np.asarray(small), factor


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` or ``(H, W)`` uint8 image as lossless PNG bytes (fast compression: it is sent, not stored)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def gray_uint8(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image as 3-channel gray (the paper's weights), e.g. under an overlay."""
    weights = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    gray = np.clip(image.astype(np.float32) @ weights, 0, 255).round().astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def log_range_mask(values: np.ndarray, log_range: tuple[float, float], floor: float = 1e-6) -> np.ndarray:
    """Boolean mask of the entries whose ``log10`` lies in ``log_range`` (inclusive)."""
    logs = np.log10(np.maximum(values, floor))
    return (logs >= log_range[0]) & (logs <= log_range[1])


def gv_gains(table: pd.DataFrame, metric: str = "psnr") -> pd.DataFrame:
    """Per-image gain of each GV-trained model over the pixel-loss model of the same arch, scale (and seed).

    Returns columns ``pair, image, <metric>_base, <metric>_gv, <metric>_gain`` (empty when no pair exists).
    """
    columns = ["pair", "image", f"{metric}_base", f"{metric}_gv", f"{metric}_gain"]
    if "gv_weight" not in table or "arch" not in table:
        return pd.DataFrame(columns=columns)
    rows = table[pd.to_numeric(table["gv_weight"], errors="coerce").notna()].copy()
    rows["gv_weight"] = pd.to_numeric(rows["gv_weight"])
    keys = [k for k in ("arch", "scale", "seed", "protocol", "image") if k in rows]
    base = rows[rows["gv_weight"] == 0][[*keys, metric]].rename(columns={metric: f"{metric}_base"})
    gv = rows[rows["gv_weight"] > 0][[*keys, "gv_weight", metric]].rename(columns={metric: f"{metric}_gv"})
    merged = gv.merge(base, on=keys)
    if merged.empty:
        return pd.DataFrame(columns=columns)
    merged[f"{metric}_gain"] = merged[f"{metric}_gv"] - merged[f"{metric}_base"]
    scale_part = merged["scale"].map(lambda s: f" x{int(s)}") if "scale" in merged else ""
    merged["pair"] = merged["arch"].astype(str) + scale_part + merged["gv_weight"].map(lambda w: f" λ={w:g}")
    return merged[columns].reset_index(drop=True)


def published_means(table: pd.DataFrame) -> pd.DataFrame:
    """Means over images of ``eval_published.csv`` per (method, scale): HR, the baseline, noise control, models.

    Display only: the numbers are the shipped table's (gvcore.eval.scoring), averaged over images.
    """
    columns = [c for c in ("psnr", "ssim", "ms_ssim", "gmsd", "var_ratio", "var_logdev") if c in table]
    means = table.groupby(["scale", "method"], sort=False)[columns].mean().reset_index()
    means.insert(2, "images", table.groupby(["scale", "method"], sort=False).size().to_numpy())
    return means.sort_values(["scale"], kind="stable").round(4).reset_index(drop=True)
