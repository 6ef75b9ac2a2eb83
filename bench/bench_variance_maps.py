"""Benchmark: ``gvcore.variance_maps`` on a 2040x1356 RGB image (a DIV2K-sized frame) vs a naive baseline.

Usage::

    .venv/bin/python bench/bench_variance_maps.py [--height 1356] [--width 2040] [--repeats 15] [--threads N]

The baseline is the obvious implementation: gray -> ``F.conv2d`` Sobel -> ``F.unfold`` into 8x8 tiles ->
``torch.var``. Both run interleaved in one process; each number is the median of ``--repeats`` calls (wall and
process CPU time). The dashboard calls ``variance_maps`` on every slider move: the target is well under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gvcore.variance import variance_maps


def naive_variance_maps(x: torch.Tensor, patch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-variance maps the way the official code computes them (conv2d + unfold), the baseline."""
    gray = 0.2989 * x[:, 0:1] + 0.5870 * x[:, 1:2] + 0.1140 * x[:, 2:3]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    ky = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]).view(1, 1, 3, 3)
    h, w = x.shape[-2] // patch_size, x.shape[-1] // patch_size
    out = []
    for k in (kx, ky):
        grad = F.conv2d(gray, k, padding=1)
        tiles = F.unfold(grad, kernel_size=patch_size, stride=patch_size)
        out.append(torch.var(tiles, dim=1).view(x.shape[0], 1, h, w))
    return out[0], out[1]


def main() -> None:
    """Parse the options, time gvcore's variance maps against the baseline and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1356)
    parser.add_argument("--width", type=int, default=2040)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))

    ours, naive = variance_maps(x), naive_variance_maps(x)
    err = max((a - b).abs().max().item() for a, b in zip(ours, naive))
    cases = {"naive unfold": lambda: naive_variance_maps(x), "gvcore.variance_maps": lambda: variance_maps(x)}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(args.repeats):
        for name, fn in cases.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start_wall)
    print(
        f"variance_maps, 1x3x{args.height}x{args.width} fp32, {args.threads} threads, median of {args.repeats}"
    )
    print(f"max |difference| to the naive maps: {err:.2e}")
    print(f"{'case':<24}{'wall ms':>9}{'cpu ms':>9}")
    for name in cases:
        print(
            f"{name:<24}{1e3 * statistics.median(wall[name]):>9.1f}{1e3 * statistics.median(cpu[name]):>9.1f}"
        )
    ratio = statistics.median(wall["naive unfold"]) / statistics.median(wall["gvcore.variance_maps"])
    print(f"naive / gvcore = {ratio:.1f}x (wall); target: gvcore well under 100 ms")


if __name__ == "__main__":
    main()
