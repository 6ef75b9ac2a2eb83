"""A tiny stand-in for ``assets/`` (checkpoints, results, runs) so the dashboard tests need no reproduction.

:func:`make_fixture_assets` writes, under a folder:

- ``checkpoints/``: an L1 and an L1+GV ESPCN at x2 (random but seeded weights, our safetensors format);
- ``results/``: ``eval_standard.csv``, ``eval_official.csv`` (tidy format of docs/ARCHITECTURE.md),
  ``summary.md``, ``lambda_sweep.csv``, ``reproduce_meta.json``, ``logs/*.csv`` (as ``gvcore reproduce``);
- ``runs/``: two run directories (L1 and L1+GV) with ``log.csv`` and ``config.json``.

Numbers in the CSVs are synthetic (deterministic), only their format matters here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ARCH = "espcn"
SCALE = 2
LABELS = {0.0: "ESPCN L1 x2", 0.1: "ESPCN L1+GV x2"}
IMAGES = ("camera", "text", "coins")


def make_fixture_assets(root: Path) -> Path:
    """Write the fixture assets under ``root`` and return ``root``."""
    import gvcore

    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(parents=True, exist_ok=True)
    for gv_weight, label in LABELS.items():
        torch.manual_seed(int(gv_weight * 10))
        model = gvcore.build_model(ARCH, SCALE)
        loss = {"pixel": "l1", "gv_weight": gv_weight, "gv_patch_size": 8}
        name = f"{ARCH}_x{SCALE}_{'l1gv' if gv_weight else 'l1'}.safetensors"
        gvcore.save_checkpoint(
            root / "checkpoints" / name,
            model,
            loss=loss,
            data="bundled",
            steps=10,
            seed=0,
            metrics={"psnr": 30.0 + gv_weight},
            label=label,
        )
    rng = np.random.default_rng(0)
    rows = []
    for protocol in ("standard", "official"):
        for image in IMAGES:
            for method, gv_weight in (("HR", None), ("bicubic", None), *((v, k) for k, v in LABELS.items())):
                base = 28.0 if method == "bicubic" else 29.0 + 0.5 * (gv_weight or 0) * 10
                rows.append(
                    {
                        "method": method,
                        "arch": ARCH if gv_weight is not None else "",
                        "loss": ("l1+gv" if gv_weight else "l1") if gv_weight is not None else "",
                        "gv_weight": gv_weight if gv_weight is not None else np.nan,
                        "seed": 0,
                        "scale": SCALE,
                        "protocol": protocol,
                        "image": image,
                        "psnr": np.nan if method == "HR" else base + rng.normal(0, 0.3),
                        "ssim": np.nan if method == "HR" else 0.85 + rng.normal(0, 0.01),
                        "gv_distance": 0.0 if method == "HR" else abs(rng.normal(0.05, 0.01)),
                        "var_gx": abs(rng.normal(0.5, 0.1)),
                        "var_gy": abs(rng.normal(0.5, 0.1)),
                    }
                )
    table = pd.DataFrame(rows)
    for protocol in ("standard", "official"):
        table[table["protocol"] == protocol].to_csv(root / "results" / f"eval_{protocol}.csv", index=False)
    (root / "results" / "summary.md").write_text("# Fixture summary\n\nSynthetic numbers for tests.\n")
    pd.DataFrame(
        {
            "lambda": [0.0, 0.03, 0.1, 0.3],
            "psnr": [29.0, 29.1, 29.05, 28.7],
            "ssim": [0.85, 0.86, 0.86, 0.85],
            "var_ratio": [0.55, 0.62, 0.71, 0.83],
        }
    ).to_csv(root / "results" / "lambda_sweep.csv", index=False)
    (root / "results" / "reproduce_meta.json").write_text(json.dumps({"fixture": True, "lambda": 0.1}))
    for gv_weight in LABELS:
        run = root / "runs" / f"{ARCH}_x{SCALE}_{'l1gv' if gv_weight else 'l1'}"
        run.mkdir(parents=True, exist_ok=True)
        steps = np.arange(0, 200, 20)
        log = pd.DataFrame(
            {
                "step": steps,
                "epoch": steps // 100,
                "lr": 1e-3,
                "loss": 0.1 / (1 + steps / 50) + gv_weight * 0.01,
                "loss_pixel": 0.1 / (1 + steps / 50),
                "loss_gv": (0.05 / (1 + steps / 80)) if gv_weight else 0.0,
                "elapsed_s": steps * 0.1,
            }
        )
        for column, values in (
            ("val_psnr", 25 + steps / 40),
            ("val_ssim", 0.7 + steps / 2000),
            ("val_gv", 0.1 / (1 + steps / 100)),
            ("val_var_ratio", 0.5 + steps / 1000),
        ):
            log[column] = np.where(steps % 40 == 0, values, np.nan)
        log.to_csv(run / "log.csv", index=False)
        (root / "results" / "logs").mkdir(exist_ok=True)
        log.to_csv(root / "results" / "logs" / f"{run.name}.csv", index=False)  # the shipped copies
        (run / "config.json").write_text(json.dumps({"arch": ARCH, "scale": SCALE, "gv_weight": gv_weight}))
    return root
