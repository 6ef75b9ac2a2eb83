"""The failed-seed rule of the reproduction, judged on training images only (never on the test split).

**The rule.** Every run of a cell (architecture x scale x loss x degradation) that has 3 or more seeds is scored
on centre crops (:data:`CHECK_CROP` px) of the 15 *training* images under the standard protocol. A run whose mean
PSNR there is more than :data:`FAILED_SEED_MARGIN_DB` below the median of its cell's seeds did not train (an
optimisation failure shows on the data it was trained on) and is rerun with the next unused seed; the rerun
replaces it in every table, and the failed run, its training-image PSNR and its replacement are recorded in
``reproduce_meta.json`` (``seed_rule``). A cell is checked again after a rerun, at most :data:`MAX_RERUNS` times.
Cells with fewer than 3 seeds (the official-degradation tier, the lambda sweep) cannot be judged this way and
are left as they are.

The rule was written down after a reader reported one such run (``vdsr-lite-x2-l1-s2``), before it was applied,
and it was applied once, to every cell.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gvcore.data.bundled import bundled_image_paths
from gvcore.eval.evaluate import evaluate
from gvcore.reproduce.plan import RunSpec
from gvcore.reproduce.runs import _subset

__all__ = [
    "CHECK_CROP",
    "FAILED_SEED_MARGIN_DB",
    "MAX_RERUNS",
    "SeedVerdict",
    "apply_seed_rule",
    "judge_seeds",
    "training_psnr",
]

#: how far below its cell's median training-image PSNR a run must fall to count as failed (dB)
FAILED_SEED_MARGIN_DB = 0.25
#: side of the centre crops of the training images the rule scores on (px)
CHECK_CROP = 256
#: reruns per cell at most
MAX_RERUNS = 2


@dataclass(frozen=True)
class SeedVerdict:
    """One run judged by the rule: its training-image PSNR, its cell's median, and whether it failed."""

    label: str
    cell: str
    psnr: float
    median: float

    @property
    def failed(self) -> bool:
        """More than :data:`FAILED_SEED_MARGIN_DB` below the median of its cell."""
        return self.psnr < self.median - FAILED_SEED_MARGIN_DB


def judge_seeds(psnr: Mapping[str, float], cells: Mapping[str, str]) -> list[SeedVerdict]:
    """Judge every run of every cell with 3 or more seeds.

    Args:
        psnr: run label -> mean PSNR on the training crops.
        cells: run label -> its cell (any string naming architecture, scale, loss, degradation).

    Returns:
        One :class:`SeedVerdict` per judged run, in label order.

    Example:
        >>> cells = {"a-s0": "a", "a-s1": "a", "a-s2": "a"}
        >>> [v.failed for v in judge_seeds({"a-s0": 30.0, "a-s1": 30.1, "a-s2": 29.7}, cells)]
        [False, False, True]
    """
    by_cell: dict[str, list[str]] = {}
    for label in sorted(psnr):
        by_cell.setdefault(cells[label], []).append(label)
    verdicts = []
    for cell, labels in by_cell.items():
        if len(labels) < 3:
            continue
        median = statistics.median(psnr[label] for label in labels)
        verdicts += [SeedVerdict(label, cell, psnr[label], median) for label in labels]
    return sorted(verdicts, key=lambda v: v.label)


def training_psnr(checkpoints: Mapping[str, Path], scale: int, folder: Path) -> dict[str, float]:
    """Mean standard-protocol PSNR of each checkpoint on :data:`CHECK_CROP`-px centre crops of the train split.

    Scored through :func:`gvcore.eval.evaluate.evaluate` like every other number; ``folder`` receives the crops.
    """
    if not checkpoints:
        return {}
    data = _subset(bundled_image_paths("train"), None, folder, CHECK_CROP, force=True)
    frame = evaluate(list(checkpoints.values()), data, scale, "standard", progress=False)
    means = frame.groupby("method")["psnr"].mean()
    return {label: float(means[label]) for label in checkpoints}


def apply_seed_rule(
    specs: list[RunSpec],
    checkpoint: Callable[[RunSpec], Path],
    retrain: Callable[[list[RunSpec]], None],
    folder: Path,
) -> tuple[list[RunSpec], dict[str, Any]]:
    """Judge ``specs`` by the rule (module docstring), rerun failed ones with the next seed, and repeat.

    Args:
        specs: the runs of the grid (any mix of cells; cells with fewer than 3 seeds are not judged).
        checkpoint: the weights of a trained run.
        retrain: trains the given replacement runs (their checkpoints must exist afterwards).
        folder: where the training-image crops are written.

    Returns:
        The runs with failed ones replaced, and the record written to ``reproduce_meta.json``'s ``seed_rule``.
    """
    current = list(specs)
    tried: dict[str, set[int]] = {}
    for spec in specs:
        tried.setdefault(_cell(spec), set()).add(spec.seed)
    judged: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for _ in range(MAX_RERUNS + 1):
        verdicts = _judge(current, checkpoint, folder)
        judged = [asdict(v) | {"failed": v.failed} for v in verdicts]
        failed = [s for s in current if any(v.label == s.label and v.failed for v in verdicts)]
        if not failed or len(replaced) >= MAX_RERUNS * len({_cell(s) for s in specs}):
            break
        fresh = _next_seeds(failed, tried, verdicts, replaced)
        retrain(fresh)
        current = [s for s in current if s not in failed] + fresh
    record = {
        "rule": (
            f"a run whose mean PSNR on {CHECK_CROP}-px centre crops of the training images (standard protocol) is "
            f"more than {FAILED_SEED_MARGIN_DB} dB below the median of its cell's seeds is rerun with the next "
            f"unused seed (cells of 3 or more seeds; at most {MAX_RERUNS} reruns per cell)"
        ),
        "replaced": replaced,
        "judged": judged,
    }
    return current, record


def _judge(current: list[RunSpec], checkpoint: Callable[[RunSpec], Path], folder: Path) -> list[SeedVerdict]:
    """The rule's verdicts on ``current``: only cells of 3 or more runs are scored (training-image PSNR)."""
    sizes: dict[str, int] = {}
    for spec in current:
        sizes[_cell(spec)] = sizes.get(_cell(spec), 0) + 1
    judged_runs = [s for s in current if sizes[_cell(s)] >= 3]  # only cells the rule can judge are scored
    psnr: dict[str, float] = {}
    for scale in sorted({s.scale for s in judged_runs}):
        at = {s.label: checkpoint(s) for s in judged_runs if s.scale == scale}
        psnr.update(training_psnr(at, scale, folder))
    return judge_seeds(psnr, {s.label: _cell(s) for s in judged_runs})


def _next_seeds(
    failed: list[RunSpec],
    tried: dict[str, set[int]],
    verdicts: list[SeedVerdict],
    replaced: list[dict[str, Any]],
) -> list[RunSpec]:
    """Each failed run with its cell's next unused seed; each replacement recorded in ``replaced``."""
    fresh = []
    for spec in failed:
        seed = max(tried[_cell(spec)]) + 1
        tried[_cell(spec)].add(seed)
        fresh.append(dataclasses.replace(spec, seed=seed))
        verdict = next(v for v in verdicts if v.label == spec.label)
        replaced.append(
            {
                "failed": spec.label,
                "train_psnr": round(verdict.psnr, 4),
                "cell_median": round(verdict.median, 4),
                "replaced_by": fresh[-1].label,
            }
        )
    return fresh


def _cell(spec: RunSpec) -> str:
    """The cell a run belongs to: its name without the seed."""
    return spec.name.rsplit("-s", 1)[0]
