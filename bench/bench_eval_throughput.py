"""Benchmark: evaluation throughput (images/s) with tiles batched per forward call, on CPU and on CUDA when present.

Usage::

    .venv/bin/python bench/bench_eval_throughput.py [--arch edsr-lite vdsr-lite] [--scale 2] [--images 2]
        [--size 768x512] [--tile 64] [--batches 1 4 8] [--repeats 3] [--threads N] [--devices cpu cuda]
        [--json OUT]

``--images`` synthetic HR images of ``--size`` (seeded, smooth noise plus edges, written as PNG to a temporary
folder) are scored by ``gvcore.eval.evaluate.evaluate`` (standard protocol: HR, bicubic and model rows, every
metric) with one freshly initialised checkpoint of ``--arch``, tiles of ``--tile`` LR pixels, ``tile_batch`` each
of ``--batches``. Two figures per setting, each the median over ``--repeats`` rounds after one warm-up, the
batch sizes interleaved round by round so load from other processes hits them alike:

- ``model``: :func:`gvcore.eval.scoring.run_model` alone on the images' LR (what tile batching changes), images/s;
- ``evaluate``: the whole evaluation (LR synthesis, inference, PSNR/SSIM/GV/variances on CPU), images/s.

Ratios are to ``tile_batch=1`` on the same device in the same run, and (when CUDA is present) CUDA to CPU at
``tile_batch=1``. Devices that are absent are listed as skipped, never estimated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gvcore  # noqa: E402
from gvcore.eval.evaluate import evaluate  # noqa: E402
from gvcore.eval.scoring import run_model  # noqa: E402
from gvcore.io import load_image  # noqa: E402
from gvcore.protocol import prepare_pair  # noqa: E402


def write_images(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` seeded synthetic RGB images (smooth noise plus a few hard edges) as PNG files."""
    paths = []
    for index in range(count):
        rng = np.random.default_rng(index)
        coarse = rng.random((height // 16 + 1, width // 16 + 1, 3))
        smooth = np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
        ).astype(np.float64)
        y, x = np.mgrid[0:height, 0:width]
        stripes = 60.0 * (((x + 2 * y) // 24) % 2)[..., None]
        noise = rng.normal(0, 6, (height, width, 3))
        image = np.clip(smooth * 0.7 + stripes + noise, 0, 255).astype(np.uint8)
        path = folder / f"synthetic_{index}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_device(
    device: str, checkpoint: Path, images: list[Path], args: argparse.Namespace
) -> dict[int, dict[str, float]]:
    """Median images/s of ``model`` (inference only) and ``evaluate`` for each tile batch size on ``device``."""
    model, _ = gvcore.load_model(checkpoint, device=device)
    model.eval()
    lrs = [prepare_pair(load_image(p), args.scale, "standard")[0] for p in images]
    folder = images[0].parent
    times: dict[int, dict[str, list[float]]] = {b: {"model": [], "evaluate": []} for b in args.batches}
    for round_ in range(args.repeats + 1):
        for batch in args.batches:
            _sync(device)
            start = time.perf_counter()
            with torch.no_grad():
                for lr in lrs:
                    run_model(model, lr, args.scale, tile=args.tile, tile_batch=batch)
            _sync(device)
            model_s = time.perf_counter() - start
            start = time.perf_counter()
            evaluate(
                [checkpoint], folder, args.scale, "standard", tile=args.tile, device=device,
                tile_batch=batch, progress=False,
            )  # fmt: skip
            _sync(device)
            eval_s = time.perf_counter() - start
            if round_:  # round 0 warms up (allocator, oneDNN/cuDNN algorithm choice)
                times[batch]["model"].append(model_s)
                times[batch]["evaluate"].append(eval_s)
    return {
        b: {k: len(images) / statistics.median(v) for k, v in parts.items()} for b, parts in times.items()
    }


def main() -> int:
    """Run the benchmark and print one table per architecture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=["edsr-lite", "vdsr-lite"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--size", default="768x512", help="HR WIDTHxHEIGHT")
    parser.add_argument("--tile", type=int, default=64, help="tile side in LR pixels")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if 1 not in args.batches:
        args.batches = [1, *args.batches]
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    skipped = [d for d in args.devices if d not in devices]
    name = torch.cuda.get_device_name(0) if "cuda" in devices else "-"
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, CUDA: {name}; {args.images} images "
        f"{width}x{height}, x{args.scale}, tile {args.tile}, repeats {args.repeats}"
        + (f"; skipped (absent): {', '.join(skipped)}" if skipped else "")
    )
    results: dict[str, Any] = {"args": vars(args), "skipped": skipped, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        images = write_images(Path(tmp), args.images, width, height)
        for arch in args.arch:
            torch.manual_seed(0)
            checkpoint = Path(tmp) / f"{arch}.safetensors"
            gvcore.save_checkpoint(checkpoint, gvcore.build_model(arch, args.scale), label=arch)
            per_device = {d: bench_device(d, checkpoint, images, args) for d in devices}
            results["results"][arch] = per_device
            print(f"\n{arch} x{args.scale}\n")
            print(
                "| device | tile batch | model img/s | x batch 1 | evaluate img/s | x batch 1 | x CPU (batch 1) |"
            )
            print("|---|---|---|---|---|---|---|")
            cpu_model = per_device["cpu"][1]["model"] if "cpu" in per_device else None
            for device, rows in per_device.items():
                base = rows[1]
                for batch, row in rows.items():
                    vs_cpu = f"{row['model'] / cpu_model:.2f}x" if cpu_model and device != "cpu" else "-"
                    print(
                        f"| {device} | {batch} | {row['model']:.2f} | {row['model'] / base['model']:.2f}x | "
                        f"{row['evaluate']:.2f} | {row['evaluate'] / base['evaluate']:.2f}x | {vs_cpu} |"
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
