"""``gvcore reproduce --verify``: re-evaluate the shipped checkpoints and compare with the shipped tables.

:func:`verify` re-scores every shipped checkpoint through :func:`gvcore.evaluation.evaluate` on the images the
reproduction used (the held-out sweep images rebuilt if their folder is gone) and reports, per column, the
largest difference from ``eval_standard.csv``, ``eval_official.csv`` and ``eval_sweep.csv``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvcore.data import Protocol
from gvcore.reproduce_runs import _subset

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`.

    Attributes:
        ok: every checked value is within tolerance.
        message: a one-paragraph human-readable summary.
        max_abs_diff: the largest absolute difference per checked column.
    """

    ok: bool
    message: str
    max_abs_diff: dict[str, float]


def verify(
    out: str | Path = "assets",
    methods: Iterable[str] | None = None,
    tolerance_db: float = 1e-3,
    progress: bool = False,
) -> VerifyReport:
    """Re-evaluate the shipped checkpoints and compare with the shipped ``eval_*.csv`` tables.

    Args:
        out: the assets folder of a reproduction.
        methods: checkpoint labels to check (default all); HR and bicubic rows are always checked.
        tolerance_db: PSNR tolerance; SSIM and the variance columns get ``tolerance_db / 100``
            (relative for the variances).
        progress: show progress bars while re-evaluating.

    Returns:
        The comparison's outcome; ``ok`` is false when any value is out of tolerance.

    Raises:
        ValueError: ``out`` holds no reproduction, a method is unknown, or the scored images are gone.
    """
    import pandas as pd

    out_dir = Path(out)
    meta_path = out_dir / "results" / "reproduce_meta.json"
    if not meta_path.is_file():
        raise ValueError(
            f"no reproduction in {out_dir}: {meta_path} is missing (run `gvcore reproduce` first)"
        )
    meta = json.loads(meta_path.read_text())
    files: dict[str, str] = meta["checkpoints"]
    wanted = set(methods) if methods is not None else set(files)
    unknown = wanted - set(files)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; shipped: {sorted(files)}")
    data = meta["eval_data"]
    if data != "bundled" and not Path(data).is_dir():
        raise ValueError(f"the images this reproduction was scored on are gone: {data}")
    worst: dict[str, float] = {}
    problems: list[str] = []
    checks: list[tuple[str, Protocol, str]] = [
        ("eval_standard.csv", "standard", data),
        ("eval_official.csv", "official", data),
    ]
    sweep_csv = out_dir / "results" / "eval_sweep.csv"
    if sweep_csv.is_file():
        checks.append(("eval_sweep.csv", "standard", _sweep_data_for_verify(meta)))
    for csv_name, protocol, images in checks:
        shipped = pd.read_csv(out_dir / "results" / csv_name)
        for scale in sorted(shipped["scale"].unique()):
            labels = [m for m in shipped[shipped["scale"] == scale]["method"].unique() if m in wanted]
            if labels:
                _compare_fresh(
                    shipped[shipped["scale"] == scale],
                    [out_dir / files[m] for m in labels],
                    (images, int(scale), protocol),
                    labels,
                    (tolerance_db, progress),
                    worst,
                    problems,
                )
    ok = not problems
    summary = ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
    message = (
        ("verified: shipped tables reproduced (max diff " + summary + ")") if ok else "; ".join(problems)
    )
    return VerifyReport(ok, message, worst)


def _sweep_data_for_verify(meta: dict[str, Any]) -> str:
    """The sweep's scoring images: the folder the reproduction used, or the same held-out subset rebuilt."""
    folder = str(meta.get("sweep_data") or "")
    if folder and Path(folder).is_dir():
        return folder
    from gvcore.bundled import bundled_image_paths

    plan = meta["plan"]
    holdout = [p for p in bundled_image_paths("train") if p.name in plan["sweep_holdout"]]
    target = Path(tempfile.mkdtemp(prefix="gvcore-verify-")) / "sweep_val"
    return _subset(holdout, None, target, plan.get("image_crop"), force=True)


def _compare_fresh(
    shipped: Any,
    paths: list[Path],
    setting: tuple[str, int, Protocol],
    labels: list[str],
    tolerances: tuple[float, bool],
    worst: dict[str, float],
    problems: list[str],
) -> None:
    """Re-evaluate ``paths`` and record the largest difference per column against the ``shipped`` rows."""
    from gvcore.data import BASELINE_NAMES
    from gvcore.evaluation import evaluate

    images, scale, protocol = setting
    tolerance_db, progress = tolerances
    fresh = evaluate(paths, images, scale, protocol, progress=progress)
    keep = ["HR", BASELINE_NAMES[protocol], *labels]
    a = shipped[shipped["method"].isin(keep)].set_index(["method", "image"])
    b = fresh.set_index(["method", "image"]).loc[a.index]
    for column, tol, relative in (
        ("psnr", tolerance_db, False),
        ("ssim", tolerance_db / 100, False),
        ("gv_distance", tolerance_db / 100, True),
        ("var_gx", tolerance_db / 100, True),
        ("var_gy", tolerance_db / 100, True),
        ("var_ratio", tolerance_db / 100, True),
    ):
        x, y = a[column].astype(float), b[column].astype(float)
        diff = (x - y).abs()
        if relative:
            diff = diff / y.abs().clip(lower=1e-12)
        diff = diff[~(x.isna() & y.isna())]
        worst[column] = max(worst.get(column, 0.0), float(diff.max()) if len(diff) else 0.0)
        if len(diff) and (diff.isna().any() or float(diff.max()) > tol):
            problems.append(f"{protocol} x{scale} {column}: max diff {float(diff.max()):.3g} > {tol:g}")
