"""Fused GPU kernels for :mod:`gvcore` (optional; the torch path is the reference and the CPU default).

``gvcore.kernels.triton_gv`` holds the fused Triton Gradient Variance loss (forward and backward). Nothing here
imports Triton at import time: Triton is imported on first use, so ``import gvcore.kernels`` is free and works
on machines without Triton.
"""

from __future__ import annotations

__all__: list[str] = []
