"""Benchmark: server memory growth when the variance explorer analyses many different large uploads.

Usage::

    python bench/bench_dashboard_memory.py [--uploads 20] [--warmup 3] [--side 1500] [--second degraded]
                                           [--sessions 4]

Drives the dashboard in-process with Streamlit's ``AppTest`` (the same script runner a server uses, one
session): opens the variance explorer, switches its source to "Upload" and uploads ``--uploads`` different
``side x side`` RGB PNGs one after another (each a distinct image, so no cache hit can hide the cost); with
``--second degraded`` each is also compared with a degraded copy (a second set of maps per upload); with
``--sessions N``, N sessions take turns (like N browsers), sharing the server's caches. The
resident set size (``VmRSS`` of this process, which is the server) is read after the ``--warmup`` first uploads
and after every later upload; the growth from warm-up to the last (and its maximum on the way) is the figure the
user guide quotes (docs/guide/library.md; the target: < 400 MB for
20 uploads of 1500x1500). The baseline is this run's own RSS after warm-up, so the figure is a difference
measured in one run, not an absolute that depends on the machine.

Assets: an empty assets root (the explorer needs none for uploads), so the numbers do not depend on the
reproduction's checkpoints.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status (Linux only)")


def png_upload(index: int, side: int) -> bytes:
    """A distinct ``side x side`` RGB PNG: smooth structure plus seeded noise (so every upload is new)."""
    from PIL import Image

    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    base = (np.sin(xx / (17.0 + index)) + np.cos(yy / (23.0 + index))) * 50 + 128
    noise = rng.normal(0, 12, (side, side, 3)).astype(np.float32)
    pixels = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def open_explorer(app: Path) -> Any:
    """A new session on the variance explorer with its source set to "Upload"."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(app), default_timeout=600)
    at.run()
    at.switch_page("../pages/variance_explorer.py").run()
    at.radio(key="vx-source").set_value("Upload").run()
    return at


def upload(at: Any, index: int, side: int, second: str) -> None:
    """Upload the ``index``-th image in session ``at`` (and pick the degraded copy once, with ``second``)."""
    at.file_uploader(key="vx-upload").upload(f"upload_{index:02d}.png", png_upload(index, side), "image/png")
    at.run()
    if second == "degraded" and at.radio(key="vx-second").value != "a degraded copy":
        at.radio(key="vx-second").set_value("a degraded copy").run()
    if at.exception or at.error:
        problems = [e.message for e in at.exception] + [str(e.value) for e in at.error]
        raise SystemExit(f"upload {index}: the page failed: {problems}")


def main() -> None:
    """Run the scenario and print RSS after warm-up, after the last upload, and the growth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--uploads", type=int, default=20, help="uploads in all (spread over the sessions)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--side", type=int, default=1500)
    parser.add_argument("--second", choices=["none", "degraded"], default="none")
    parser.add_argument(
        "--sessions", type=int, default=1, help="sessions taking turns (like several browsers)"
    )
    args = parser.parse_args()
    if args.warmup >= args.uploads:
        parser.error("--warmup must be smaller than --uploads")
    if args.sessions < 1:
        parser.error("--sessions must be >= 1")

    with tempfile.TemporaryDirectory() as assets:
        os.environ["GVLAB_ASSETS"] = assets
        os.environ["GVLAB_RUNS"] = assets
        sessions = [open_explorer(ROOT / "dashboard" / "app.py") for _ in range(args.sessions)]
        print(
            f"start: {rss_mb():.0f} MiB  ({args.side}x{args.side} uploads, second image: {args.second}, "
            f"{args.sessions} session(s))"
        )
        warm, peak = 0.0, 0.0
        for index in range(args.uploads):
            started = time.perf_counter()
            upload(sessions[index % len(sessions)], index, args.side, args.second)
            gc.collect()
            now = rss_mb()
            print(f"upload {index + 1:2d}: {time.perf_counter() - started:5.1f} s  RSS {now:6.0f} MiB")
            if index + 1 == args.warmup:
                warm = now
            if index + 1 >= args.warmup:
                peak = max(peak, now)
        final = rss_mb()
    growth = final - warm
    print(
        f"RSS after {args.warmup} warm-up uploads: {warm:.0f} MiB; after {args.uploads}: {final:.0f} MiB; "
        f"growth over {args.uploads - args.warmup} more uploads: {growth:.0f} MiB, at most {peak - warm:.0f} MiB "
        "on the way (target < 400)"
    )


if __name__ == "__main__":
    main()
