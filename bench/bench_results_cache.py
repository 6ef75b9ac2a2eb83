"""Benchmark: ``gvcore eval --cache`` -- a repeated evaluation read back from the results database.

Evaluates the same checkpoints on the same images three times in one process: without a database (the
baseline), into an empty database (cold: computes and stores), and again (warm: read back). Prints the wall
time of each and the ratios to the baseline, and checks that the warm table equals the uncached one.

    python bench/bench_results_cache.py                      # 4 bundled x2 checkpoints, bundled test split
    python bench/bench_results_cache.py --checkpoints 2 --data some/folder
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from gvcore.eval.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the three evaluations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoints", type=int, default=4, help="how many bundled x2 checkpoints (default 4)"
    )
    parser.add_argument("--data", default="bundled", help="images (default: the bundled test split)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ckpts = sorted((ROOT / "assets" / "checkpoints").glob("*-x2-*-s0.safetensors"))[: args.checkpoints]
    if not ckpts:
        raise SystemExit("no bundled x2 checkpoints under assets/checkpoints")
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "results.sqlite"
        start = time.perf_counter()
        plain = evaluate(ckpts, args.data, 2, progress=False)
        times["no cache (baseline)"] = time.perf_counter() - start
        start = time.perf_counter()
        evaluate(ckpts, args.data, 2, progress=False, cache=db)
        times["cache, cold (compute + store)"] = time.perf_counter() - start
        start = time.perf_counter()
        warm = evaluate(ckpts, args.data, 2, progress=False, cache=db)
        times["cache, warm (read back)"] = time.perf_counter() - start
    pd.testing.assert_frame_equal(plain, warm)
    images = plain["image"].nunique()
    print(f"{len(ckpts)} checkpoints x {images} images ({args.data}), torch threads {args.threads}")
    print("| run | seconds | x baseline |")
    print("|---|---|---|")
    base = times["no cache (baseline)"]
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.3f} |")
    print("warm table == uncached table: yes")


if __name__ == "__main__":
    main()
