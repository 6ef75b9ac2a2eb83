"""A small snapshot series made by short ``gvcore train`` runs (no shipped assets): L1 and L1+GV.

Each run trains ESPCN x2 on the bundled split for a few steps, resuming to the next snapshot step and copying
``last.safetensors`` to ``<run>/snapshots/step_XXXXXX.safetensors`` (the ``--keep-snapshots`` file name).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gvcore.training.run import TrainConfig, train

#: snapshot steps of each run.
STEPS: tuple[int, ...] = (2, 4, 6)
#: run name -> loss recipe.
RUNS: dict[str, str] = {"l1": "l1", "l1gv": "l1+gv"}


def make_snapshot_runs(root: Path, steps: tuple[int, ...] = STEPS) -> dict[str, Path]:
    """Train the runs of :data:`RUNS` under ``root``; return run name -> snapshot folder."""
    folders = {}
    for name, loss in RUNS.items():
        out = root / name
        for i, step in enumerate(steps):
            config = TrainConfig(
                arch="espcn",
                scale=2,
                out=str(out),
                loss=loss,
                data="bundled",
                steps=step,
                batch_size=2,
                crop=24,
                seed=0,
                resume=i > 0,
                val_every=0,
                ckpt_every=step,
                threads=1,
                label=name,
                progress=False,
            )
            train(config)
            snapshots = out / "snapshots"
            snapshots.mkdir(exist_ok=True)
            shutil.copyfile(out / "last.safetensors", snapshots / f"step_{step:06d}.safetensors")
        folders[name] = out / "snapshots"
    return folders


def main() -> None:
    """``python tests/snapshot_fixtures.py [ROOT] [--steps 20,40,60]``: a demo series for the Training snapshots page."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Train two short ESPCN x2 runs (L1, L1+GV) keeping snapshots."
    )
    parser.add_argument("root", nargs="?", default="runs/demo", help="where the runs go (default runs/demo)")
    parser.add_argument("--steps", default="20,40,60,80", help="snapshot steps, comma-separated")
    args = parser.parse_args()
    steps = tuple(int(s) for s in args.steps.split(","))
    for name, folder in make_snapshot_runs(Path(args.root), steps).items():
        print(f"{name}: {folder}")


if __name__ == "__main__":
    main()
