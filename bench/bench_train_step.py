"""Benchmark: training-step cost of L1+GV vs L1 for each preset, and evaluation throughput (CPU or CUDA).

Usage::

    .venv/bin/python bench/bench_train_step.py [--batch 16] [--crop 64] [--scales 2 4] [--repeats 20]
        [--threads N] [--device cpu] [--eval-images 2] [--json OUT]

Training step: ``gvcore.training.run.train_step`` (forward, ``sum(weight * term)``, backward, optimizer step, the
preset's recipe: SGD + clip for VDSR, Adam otherwise) on random patches at the reproduction's batch and crop
(``gvcore.reproduce.run.PLAN``). For each preset and scale the two recipes run interleaved, round after round, in
one process, so load from other processes hits both alike; each time is the median over ``--repeats`` rounds
after 3 warm-up steps. The ratio ``l1+gv / l1`` is the GV overhead (target <= 1.10).

Evaluation throughput: ``gvcore.eval.evaluate.evaluate`` of one freshly initialised checkpoint per preset on the
first ``--eval-images`` bundled test images (standard protocol, HR + bicubic + model rows), in images/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gvcore.models import build_model  # noqa: E402
from gvcore.training.run import TrainConfig, make_optimizer, parse_loss, resolve_config, train_step  # noqa: E402

PRESETS = ("vdsr-lite", "edsr-lite", "espcn")
RECIPES = ("l1", "l1+gv")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(
    arch: str, scale: int, batch: int, crop: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per training step for each recipe, interleaved."""
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(batch, 3, crop, crop, generator=gen).to(device)
    lr = torch.rand(batch, 3, crop // scale, crop // scale, generator=gen).to(device)
    setups = {}
    for recipe in RECIPES:
        config = resolve_config(TrainConfig(arch=arch, scale=scale, out="-", loss=recipe))
        torch.manual_seed(0)
        model = build_model(arch, scale).to(device)
        setups[recipe] = (model, parse_loss(recipe, config.gv_weight), make_optimizer(model, config), config)
    times: dict[str, list[float]] = {r: [] for r in RECIPES}
    for round_ in range(repeats + 3):
        for recipe in RECIPES:
            model, terms, optimizer, config = setups[recipe]
            _sync(device)
            t0 = time.perf_counter()
            train_step(model, terms, optimizer, lr, hr, grad_clip=float(config.grad_clip or 0.0))
            _sync(device)
            if round_ >= 3:
                times[recipe].append(time.perf_counter() - t0)
    return {recipe: statistics.median(v) for recipe, v in times.items()}


def bench_eval(arch: str, scale: int, images: int, device: str) -> float:
    """Images per second of ``gvcore.eval.evaluate.evaluate`` (HR, bicubic and one model) on bundled test images."""
    from gvcore.checkpoint.store import save_checkpoint
    from gvcore.data.bundled import bundled_image_paths
    from gvcore.eval.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "images"
        data.mkdir()
        for path in bundled_image_paths("test")[:images]:
            (data / path.name).write_bytes(path.read_bytes())
        ckpt = save_checkpoint(Path(tmp) / "m.safetensors", build_model(arch, scale), steps=0)
        evaluate([ckpt], data, scale, "standard", device=device, progress=False)  # warm-up
        t0 = time.perf_counter()
        evaluate([ckpt], data, scale, "standard", device=device, progress=False)
        return images / (time.perf_counter() - t0)


def main() -> None:
    """Parse the options, time the training recipes' steps and evaluation throughput, and print the tables."""
    from gvcore.reproduce.run import PLAN

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=PLAN.batch_size)
    parser.add_argument("--crop", type=int, default=PLAN.crop)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-images", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch}, crop {args.crop}")
    print("| preset | scale | l1 ms/step | l1+gv ms/step | ratio | eval images/s |")
    print("|---|---|---|---|---|---|")
    results = []
    for arch in args.presets:
        for scale in args.scales:
            t = bench_train(arch, scale, args.batch, args.crop, args.repeats, device)
            ips = bench_eval(arch, scale, args.eval_images, args.device) if args.eval_images else float("nan")
            ratio = t["l1+gv"] / t["l1"]
            results.append(
                {
                    "arch": arch,
                    "scale": scale,
                    **{f"{k}_s": v for k, v in t.items()},
                    "ratio": ratio,
                    "eval_images_per_s": ips,
                }
            )
            print(
                f"| {arch} | {scale} | {t['l1'] * 1e3:.1f} | {t['l1+gv'] * 1e3:.1f} | {ratio:.3f} | {ips:.2f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
