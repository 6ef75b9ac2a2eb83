"""Benchmark: landing-page cold/warm start and the explorer's patch-size change, in headless Chromium.

Usage::

    python bench/bench_dashboard_pages.py [--rounds 3] [--assets assets] [--baseline DIR]

Each round starts a fresh ``streamlit run dashboard/app.py`` (empty caches) on a free 127.0.0.1 port and, in
Debian's Chromium driven by Playwright (the flags of ``tests/test_browser.py``), measures:

- **cold**: the landing page from the first request until the script has finished and its charts are drawn;
- **warm**: the same page in a new browser session, models and data now cached (the baseline of ``cold``);
- **patch**: in the Variance explorer on the 512x512 ``camera`` image, the patch-size slider 8 -> 16 until the
  new maps are drawn.

The figure to quote is the ratio **cold / warm** measured in the same round (how much the first visitor pays
over a cached one), next to the absolute medians. With ``--baseline DIR`` (another checkout of this
repository, e.g. ``git worktree add /tmp/base <commit>``), rounds alternate between the two trees on the same
machine and the ratios **this tree / baseline** are printed: a before/after comparison that machine load
affects the same way on both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_dashboard_pages.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from tests.serving import CHROMIUM_ARGS, find_chromium, serve_dashboard  # noqa: E402

TIMEOUT_MS = 120_000
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@contextmanager
def serve(tree: Path, assets: Path) -> Iterator[str]:
    """A fresh Streamlit server for the checkout ``tree`` (its own ``gvcore`` and ``dashboard``); yields its URL."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "GVLAB_ASSETS": str(assets.resolve()),
        "GVLAB_RUNS": str(assets.resolve() / "runs"),
    }
    with serve_dashboard(env, tree=tree) as server:
        yield server.url


def _wait_done(page: Any, charts: int) -> None:
    page.wait_for_selector(DONE, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=charts,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector(DONE, timeout=TIMEOUT_MS)


def _open(browser: Any, url: str, charts: int) -> tuple[Any, Any, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    _wait_done(page, charts)
    return context, page, time.perf_counter() - start


def measure_round(browser: Any, tree: Path, assets: Path) -> dict[str, float]:
    """One round on a fresh server: cold and warm landing page, then the explorer's patch-size change."""
    with serve(tree, assets) as url:
        context, _, cold = _open(browser, f"{url}/", 3)
        context.close()
        context, _, warm = _open(browser, f"{url}/", 3)
        context.close()
        context, page, _ = _open(browser, f"{url}/explorer", 4)
        try:
            page.get_by_text("64 x 64 patches of 8x8").first.wait_for(timeout=TIMEOUT_MS)
            thumb = page.locator('[data-testid="stSlider"]', has_text="Patch size").get_by_role("slider")
            thumb.focus()
            start = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.get_by_text("32 x 32 patches of 16x16").first.wait_for(timeout=TIMEOUT_MS)
            _wait_done(page, 4)
            patch = time.perf_counter() - start
        finally:
            context.close()
    return {"cold": cold, "warm": warm, "patch": patch}


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers per tree (default 3)")
    parser.add_argument("--assets", type=Path, default=ROOT / "assets", help="assets root (default: shipped)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to compare against")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("bench_dashboard_pages: error: Debian's Chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    trees = {"this tree": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for index in range(args.rounds):
                for name, tree in trees.items():  # alternating, so load drifts hit both trees alike
                    row = measure_round(browser, tree, args.assets)
                    results[name].append(row)
                    shown = ", ".join(f"{k} {v:.2f} s" for k, v in row.items())
                    print(f"round {index + 1} {name}: {shown}", flush=True)
        finally:
            browser.close()
    medians = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for name, rows in results.items()
    }
    print("\nmedians (s) and cold/warm ratio (same round's cached session as the baseline):")
    for name, row in medians.items():
        ratio = statistics.median(r["cold"] / r["warm"] for r in results[name])
        print(
            f"  {name}: cold {row['cold']:.2f}, warm {row['warm']:.2f}, patch {row['patch']:.2f}; "
            f"cold/warm {ratio:.2f}x"
        )
    if "baseline" in medians:
        print("this tree / baseline (median of per-round ratios; < 1 = faster):")
        for key in ("cold", "warm", "patch"):
            pairs = zip(results["this tree"], results["baseline"], strict=True)
            ratio = statistics.median(a[key] / b[key] for a, b in pairs)
            print(f"  {key}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
