"""``gvcore reproduce --verify``: re-evaluate the shipped checkpoints and compare with the shipped tables.

:func:`verify` re-scores every shipped checkpoint through :func:`gvcore.eval.evaluate.evaluate` on the images the
reproduction used (the held-out sweep images rebuilt if their folder is gone) and reports, per column, the
largest difference from ``eval_standard.csv``, ``eval_official.csv`` and ``eval_sweep.csv``.

**When the numbers are bit-identical, and how far they may move otherwise.** Re-scoring on the machine, thread
count and torch build that wrote the tables gives the same bits. Anywhere else, float32 convolutions and
reductions pick other kernels (CPU instruction set, thread count, ``torch.backends.mkldnn``) and their sums differ
in the last bits. Under the standard protocol an output is then rounded to 8 bits, so a drift of ~1e-6 moves the
few pixels that sit within it of a rounding boundary by a whole level (1/255): that, not the float32 drift itself,
is what moves the scores. The tolerances below are about 10-20 times the largest spread measured across such kernel
choices (``python bench/numeric_spread.py``: 1 and 2 threads x mkldnn on/off on this project's 2-core Xeon with
torch 2.14.1; 1 and 16 threads x mkldnn on/off on the device machine's 16-core Xeon with torch 2.11 and Python
3.12, ``bash bench/device_check.sh``, 2026-12-04). Largest spreads, either machine: PSNR 4.3e-5 dB, SSIM 1.2e-6,
mean patch variances 5.8e-6 relative, gv_distance 4.2e-5 relative (all from mkldnn off; with it on, the second
machine reproduced the shipped tables to 5e-9 dB):

- PSNR: ``tolerance_db`` = 1e-3 dB; SSIM: ``tolerance_db / 100`` = 1e-5.
- The mean patch variances ``var_gx``, ``var_gy`` and ``var_ratio``: relative ``tolerance_db / 10`` = 1e-4.
- ``ms_ssim``, ``gmsd`` (when the shipped table has them): as SSIM, 1e-5; ``var_logdev``: 1e-4 absolute.
- ``gv_distance`` = mean over patches of ``d**2`` with ``d = v_SR - v_HR`` is a squared *difference*: where SR keeps
  a share ``r`` of HR's variance, a relative error ``e`` of the variances becomes about ``e / (1 - r)`` in ``d``
  and twice that in ``d**2``. So its relative tolerance is derived per row from the shipped ratio:
  ``2 * 1e-4 * (1 + 1 / |1 - var_ratio|)`` (the ``1 +`` covers a ratio far from 1), capped at 1 (HR's row is 0).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvcore.data.bundled import bundled_image_paths
from gvcore.eval.evaluate import evaluate
from gvcore.protocol import Protocol
from gvcore.reproduce.runs import _subset

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
        tolerance_db: PSNR tolerance in dB; SSIM gets ``tolerance_db / 100``, the mean patch variances
            ``tolerance_db / 10`` relative, ``gv_distance`` a per-row relative bound (module docstring).
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
        ("eval_standard.csv", Protocol.STANDARD, data),
        ("eval_official.csv", Protocol.OFFICIAL, data),
    ]
    sweep_csv = out_dir / "results" / "eval_sweep.csv"
    if sweep_csv.is_file():
        checks.append(("eval_sweep.csv", Protocol.STANDARD, _sweep_data_for_verify(meta)))
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
    images, scale, protocol = setting
    tolerance_db, progress = tolerances
    noise = f"{Protocol.parse(protocol).baseline}+noise"
    with_noise = noise in set(shipped["method"])
    fresh = evaluate(paths, images, scale, protocol, progress=progress, noise=with_noise, lpips=False)
    keep = ["HR", Protocol.parse(protocol).baseline, *([noise] if with_noise else []), *labels]
    a = shipped[shipped["method"].isin(keep)].set_index(["method", "image"])
    b = fresh.set_index(["method", "image"]).loc[a.index]
    variance_tol = tolerance_db / 10  # relative, for the mean patch variances (module docstring)
    ratio = a["var_ratio"].astype(float)
    gv_tol = (2 * variance_tol * (1 + 1 / (1 - ratio).abs().clip(lower=1e-12))).clip(upper=1.0)
    for column, tol, relative in (
        ("psnr", tolerance_db, False),
        ("ssim", tolerance_db / 100, False),
        ("gv_distance", gv_tol, True),
        ("var_gx", variance_tol, True),
        ("var_gy", variance_tol, True),
        ("var_ratio", variance_tol, True),
        # metrics added later are checked where both tables have them: GMSD and MS-SSIM as SSIM (float64 over the
        # same 8-bit outputs); var_logdev, a mean |log10| of variance ratios, moves by at most variance_tol / ln 10
        *(
            (c, tolerance_db / 100, False)
            for c in ("ms_ssim", "gmsd")
            if c in a.columns and c in fresh.columns
        ),
        *(("var_logdev", variance_tol, False),)
        * int("var_logdev" in a.columns and "var_logdev" in fresh.columns),
    ):
        x, y = a[column].astype(float), b[column].astype(float)
        diff = (x - y).abs()
        if relative:
            diff = diff / y.abs().clip(lower=1e-12)
        keep = ~(x.isna() & y.isna())
        excess = (diff - tol)[keep]
        diff = diff[keep]
        worst[column] = max(worst.get(column, 0.0), float(diff.max()) if len(diff) else 0.0)
        if len(diff) and (diff.isna().any() or float(excess.max()) > 0):
            bound = f"{tol:g}" if isinstance(tol, float) else "its per-row bound"
            problems.append(f"{protocol} x{scale} {column}: max diff {float(diff.max()):.3g} > {bound}")
