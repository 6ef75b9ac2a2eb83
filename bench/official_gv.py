"""The baseline: the GV loss computed the way PAPER.md describes the official code.

gray -> ``F.conv2d`` raw Sobel (zero padding 1) -> ``nn.Unfold`` into non-overlapping ``p x p`` tiles ->
``torch.var`` (unbiased) per tile -> MSE between SR and HR maps, summed over the two directions. Written from the
paper's description (the official repository is not copied). Used by ``bench/bench_gv_loss.py`` as the "official
formula" cost; ``tests/official_gv_reference.py`` is the separate oracle the tests use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OfficialGradientVariance(nn.Module):
    """``GV = mse(Vx_sr, Vx_hr) + mse(Vy_sr, Vy_hr)`` with 3x3 raw Sobel and ``patch_size`` tiles."""

    def __init__(self, patch_size: int = 8) -> None:
        """Build the fixed 3x3 Sobel kernels and the non-overlapping ``patch_size`` unfold."""
        super().__init__()
        self.patch_size = patch_size
        kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
        ky = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]).view(1, 1, 3, 3)
        self.register_buffer("kernel_x", kx, persistent=False)
        self.register_buffer("kernel_y", ky, persistent=False)
        self.unfold = nn.Unfold(kernel_size=(patch_size, patch_size), stride=patch_size)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The GV loss of ``sr`` against ``hr``: ``(B, 3, H, W)`` RGB; partial edge patches are dropped."""
        gray_sr = 0.2989 * sr[:, 0:1] + 0.5870 * sr[:, 1:2] + 0.1140 * sr[:, 2:3]
        gray_hr = 0.2989 * hr[:, 0:1] + 0.5870 * hr[:, 1:2] + 0.1140 * hr[:, 2:3]
        gx_sr = F.conv2d(gray_sr, self.kernel_x, stride=1, padding=1)
        gy_sr = F.conv2d(gray_sr, self.kernel_y, stride=1, padding=1)
        gx_hr = F.conv2d(gray_hr, self.kernel_x, stride=1, padding=1)
        gy_hr = F.conv2d(gray_hr, self.kernel_y, stride=1, padding=1)
        var_x_sr = torch.var(self.unfold(gx_sr), dim=1)
        var_y_sr = torch.var(self.unfold(gy_sr), dim=1)
        var_x_hr = torch.var(self.unfold(gx_hr), dim=1)
        var_y_hr = torch.var(self.unfold(gy_hr), dim=1)
        return F.mse_loss(var_x_sr, var_x_hr) + F.mse_loss(var_y_sr, var_y_hr)
