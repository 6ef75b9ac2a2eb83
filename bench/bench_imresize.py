"""Benchmark: batched ``gvcore.imresize`` vs a per-row loop implementation of MATLAB's bicubic imresize.

Usage::

    .venv/bin/python bench/bench_imresize.py [--batch 16] [--size 256] [--scales 0.25 2] [--repeats 3] [--threads N]

Baseline: ``tests/reference/matlab_imresize.py`` (the reference the tests check ``gvcore`` against) -- per image,
contributions computed once per axis, then one numpy multiply-add per (output row, tap) along H and along W, in
float64, i.e. the classic loop port of MATLAB's ``resizeAlongDim`` (as BasicSR's numpy ``imresize`` does).
``gvcore`` runs on float32 ``(B, 3, H, W)`` tensors (weight matrices built in float64). The two cases run
interleaved; each number is the median over ``--repeats`` rounds, and agreement is checked first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gvcore.resize import imresize  # noqa: E402
from tests.reference import matlab_imresize as REF  # noqa: E402


def main() -> None:
    """Parse the options, time each resize implementation per scale and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 2.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    x_np = x.double().numpy()
    print(
        f"imresize, batch {args.batch}x3x{args.size}x{args.size} float32, torch threads {torch.get_num_threads()}, "
        f"median of {args.repeats}"
    )
    for scale in args.scales:
        out = imresize(x, scale)
        ref = REF.imresize_batch_reference(x_np, scale)
        err = np.abs(out.double().numpy() - ref).max()
        times: dict[str, list[float]] = {"gvcore": [], "per-row loop": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            imresize(x, scale)
            times["gvcore"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            REF.imresize_batch_reference(x_np, scale)
            times["per-row loop"].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["per-row loop"] / med["gvcore"]
        print(
            f"  scale {scale:g}: gvcore {med['gvcore'] * 1e3:8.1f} ms, per-row loop {med['per-row loop'] * 1e3:8.1f} ms,"
            f" speed-up {ratio:6.1f}x ({'meets' if ratio >= 20 else 'misses'} 20x), max |diff| {err:.1e}"
        )


if __name__ == "__main__":
    main()
