"""Independent re-derivation of the GV loss, used as the test oracle (not imported by gvcore).

Written from PAPER.md's description of the official code, the slow and obvious way: gray by explicit weights,
``F.conv2d`` with literal Sobel kernels, ``nn.Unfold`` to cut tiles, ``torch.var`` per tile, MSE. The general
variant adds the non-paper options by the same route (``F.pad`` for the padding mode, ``Unfold`` stride for
overlapping tiles, per-channel conv, explicit distance formulas), so it shares no code with ``gvcore``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNELS = {
    "sobel": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
    "scharr": ([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], [[3, 10, 3], [0, 0, 0], [-3, -10, -3]]),
    "central": ([[0, 0, 0], [-1, 0, 1], [0, 0, 0]], [[0, 1, 0], [0, 0, 0], [0, -1, 0]]),
}


def official_gv_loss(sr: torch.Tensor, hr: torch.Tensor, patch_size: int = 8) -> torch.Tensor:
    """PAPER.md steps 1-5, verbatim: the value our defaults must equal."""

    def var_maps(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = 0.2989 * x[:, 0:1] + 0.5870 * x[:, 1:2] + 0.1140 * x[:, 2:3]
        kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype).view(1, 1, 3, 3)
        ky = torch.tensor([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=x.dtype).view(1, 1, 3, 3)
        gx = F.conv2d(g, kx, stride=1, padding=1)
        gy = F.conv2d(g, ky, stride=1, padding=1)
        unfold = nn.Unfold(kernel_size=(patch_size, patch_size), stride=patch_size)
        vx = torch.var(unfold(gx), dim=1, unbiased=True)  # (B, L)
        vy = torch.var(unfold(gy), dim=1, unbiased=True)
        return vx, vy

    vx_sr, vy_sr = var_maps(sr)
    vx_hr, vy_hr = var_maps(hr)
    return F.mse_loss(vx_sr, vx_hr) + F.mse_loss(vy_sr, vy_hr)


def reference_variance_maps(
    x: torch.Tensor,
    patch_size: int = 8,
    stride: int | None = None,
    unbiased: bool = True,
    padding: str = "zeros",
    operator: str = "sobel",
    gray: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(vx, vy)``, each ``(B, C', L)`` with ``L`` tiles in unfold order."""
    if gray and x.shape[1] == 3:
        x = 0.2989 * x[:, 0:1] + 0.5870 * x[:, 1:2] + 0.1140 * x[:, 2:3]
    b, c, h, w = x.shape
    mode = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect"}[padding]
    xp = F.pad(x, (1, 1, 1, 1), mode=mode).reshape(b * c, 1, h + 2, w + 2)
    kx, ky = (torch.tensor(k, dtype=x.dtype).view(1, 1, 3, 3) for k in KERNELS[operator])
    unfold = nn.Unfold(kernel_size=patch_size, stride=stride or patch_size)
    out = []
    for k in (kx, ky):
        grad = F.conv2d(xp, k)
        tiles = unfold(grad)  # (B*C, p*p, L)
        out.append(torch.var(tiles, dim=1, unbiased=unbiased).reshape(b, c, -1))
    return out[0], out[1]


def reference_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    patch_size: int = 8,
    reduction: str = "mean",
    distance: str = "mse",
    relative: bool = False,
    eps: float = 1e-4,
    charbonnier_eps: float = 1e-3,
    patch_sizes: tuple[int, ...] | None = None,
    **maps_kwargs: object,
) -> torch.Tensor:
    """The documented general loss: per sample, ``mean(dist(dx)) + mean(dist(dy))``, mean over scales."""
    per_scale = []
    for p in patch_sizes or (patch_size,):
        per_sample = torch.zeros(sr.shape[0], dtype=sr.dtype)
        sr_maps = reference_variance_maps(sr, p, **maps_kwargs)  # type: ignore[arg-type]
        hr_maps = reference_variance_maps(hr.detach(), p, **maps_kwargs)  # type: ignore[arg-type]
        for v_sr, v_hr in zip(sr_maps, hr_maps):
            d = torch.log(v_sr + eps) - torch.log(v_hr + eps) if relative else v_sr - v_hr
            if distance == "mse":
                e = d**2
            elif distance == "l1":
                e = d.abs()
            else:
                e = (d**2 + charbonnier_eps**2).sqrt() - charbonnier_eps
            per_sample = per_sample + e.flatten(1).mean(dim=1)
        per_scale.append(per_sample)
    loss = sum(per_scale) / len(per_scale)
    assert isinstance(loss, torch.Tensor)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]
