"""Benchmark: every dashboard page's settle time, cold and warm, against a one-line Streamlit page.

Usage::

    python bench/bench_page_speed.py [--rounds 1] [--pages observation atlas ...] [--width 1366] [--height 768]

Each round starts two fresh servers side by side on free 127.0.0.1 ports, the way a user starts them:

- the dashboard: ``python -m gvcore dashboard --port P`` with ``HOME`` and the XDG folders in a temporary directory
  (a fresh install: nothing from an earlier run is found there; the shipped ``assets/`` are used);
- the baseline: a one-line page (``st.write("Gradient Variance Lab")``) under ``python -m streamlit run``, with the
  same launcher flags.

Both are started and stopped by :mod:`tests.serving` (the helper of the browser tests).

Then, in headless Debian Chromium (Playwright, the flags of ``tests/test_browser.py``), every page is opened in a
new browser context (a new Streamlit session): first each page once (**cold**: the server's first visit of that
page; the first page listed also pays the server's first script run), then each page again (**warm**: a second
visit, in a new session). The one-line page is opened the same way, interleaved with the dashboard's pages, so
machine load drifts hit both.

A page has **settled** when Streamlit says its script (and any fragment) is not running, no spinner or progress
bar is on the page, every Plotly chart is drawn, and nothing in the page has changed for ``--quiet`` ms; the
settle time is the moment of the *last* change, in ms from the navigation's start (a ``MutationObserver``
installed before the page's own scripts), so the quiet window is not counted. Its **visible part** settled at
the last change of an element that, once the page settled, lies in the viewport (``--width`` x ``--height``, not
scrolled): what a reader sees before scrolling (an added node or a changed text counts; a changed attribute does
not, as React rewrites class names without a visible change when later elements arrive).

Printed: each page's cold and warm settle time and their ratios to the one-line page's (cold to its cold visit,
warm to the median of its warm visits), the second visit's visible part, the machine's load average before and after, and with ``--rounds`` > 1
the median over rounds. A page that does not settle within ``--timeout`` s is printed as ``timeout``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_page_speed.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from tests.serving import (  # noqa: E402
    CHROMIUM_ARGS,
    dashboard_command,
    find_chromium,
    free_port,
    fresh_home,
    serve,
    serve_one_line,
)

#: every page of ``dashboard/app.py``, by URL path ("" = the default page, the landing page)
PAGES = ("observation", "explorer", "compare", "benchmark", "atlas", "training", "snapshots")

# installed before the page's own scripts: remembers when anything in the page last changed (ms since navigation),
# and which elements changed when (an added node or a changed text; not an attribute, which React rewrites without a
# visible change, e.g. a class name, when a later element arrives), for VISIBLE_SETTLED
TRACK_CHANGES = """
window.__lastChange = 0;
window.__changes = [];
const start = () => {
  new MutationObserver((records) => {
    const now = performance.now();
    const changed = new Set();
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && el.closest && el.closest('[data-testid="stHeader"], [data-testid="stStatusWidget"]')) continue;
      window.__lastChange = now;
      if (r.type === 'attributes') continue;
      if (r.type === 'characterData') { if (el) changed.add(el); continue; }
      for (const node of r.addedNodes) {
        const added = node.nodeType === 1 ? node : node.parentElement;
        if (added) changed.add(added);
      }
    }
    for (const el of changed) window.__changes.push([now, el]);
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
};
if (document.documentElement) start(); else document.addEventListener('readystatechange', start, {once: true});
"""
SETTLED = """quiet => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || !main.querySelector('[data-testid="stElementContainer"]')) return false;
  if (document.querySelector('[data-testid="stSpinner"], [data-testid="stProgress"], .stSkeleton,'
                             + ' [data-testid="stSkeleton"]')) return false;
  // every chart drawn: st.plotly_chart's and the dashboard's own (dashboard/charts.py; text only if it failed)
  for (const plot of document.querySelectorAll('.js-plotly-plot, .gvlab-chart'))
    if (!plot.querySelector('.main-svg') && !plot.textContent) return false;
  return performance.now() - window.__lastChange > quiet;
}"""


# once settled: the last change of an element that ends up in the viewport (what a reader sees without scrolling)
VISIBLE_SETTLED = """() => {
  let last = 0;
  for (const [time, el] of window.__changes) {
    if (time <= last || !el.isConnected) continue;
    const box = el.getBoundingClientRect();
    if ((box.width > 0 || box.height > 0) && box.bottom > 0 && box.right > 0
        && box.top < window.innerHeight && box.left < window.innerWidth) last = time;
  }
  return last;
}"""


class Visit(NamedTuple):
    """One visit's times in seconds from navigation (``None``: it did not settle in time)."""

    settled: float | None  # the last change of the page (module docstring)
    visible: float | None  # the last change of what is in the viewport at the end (above the fold)


def visit(browser: Any, url: str, size: tuple[int, int], quiet_ms: int, timeout_s: float) -> Visit:
    """Open ``url`` in a new browser context (a new session, nothing cached) and time it until it settled."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_init_script(TRACK_CHANGES)
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit", timeout=int(timeout_s * 1000))
        page.wait_for_function(SETTLED, arg=quiet_ms, timeout=int(timeout_s * 1000), polling=100)
        settled = float(page.evaluate("window.__lastChange")) / 1000.0
        return Visit(settled, float(page.evaluate(VISIBLE_SETTLED)) / 1000.0)
    except PlaywrightTimeout:  # a page that never settles is a result, not a crash
        return Visit(None, None)
    finally:
        context.close()


def settle_time(
    browser: Any, url: str, size: tuple[int, int], quiet_ms: int, timeout_s: float
) -> float | None:
    """Seconds from navigation until ``url`` settled (module docstring) in a new session; ``None`` on timeout."""
    return visit(browser, url, size, quiet_ms, timeout_s).settled


def load_average() -> str:
    """The 1-minute load average and the CPU count, as one string."""
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


Visits = dict[str, dict[str, float | None]]


def run_round(
    browser: Any, pages: list[str], args: argparse.Namespace
) -> tuple[Visits, dict[str, list[float | None]]]:
    """One round on fresh servers: ``{page: {"cold": s, "warm": s}}`` and the one-line page's visits by kind."""
    size = (args.width, args.height)
    with tempfile.TemporaryDirectory(prefix="gvlab-speed-") as tmp:
        home = Path(tmp)
        env = fresh_home(home)
        work = home / "work"  # not the repository: the user's own working directory
        work.mkdir()
        port = free_port()
        visits: Visits = {}
        one_line: dict[str, list[float | None]] = {"cold": [], "warm": []}
        with (
            serve(dashboard_command(port), port, env=env, cwd=work) as dashboard,
            serve_one_line(work, env=env) as baseline,
        ):
            dash_url, base_url = dashboard.url, baseline.url
            for which in ("cold", "warm"):
                for name in pages:
                    # the one-line page's first visit is its cold one; every later visit is a warm one
                    kind = "cold" if not one_line["cold"] else "warm"
                    base_time = settle_time(browser, base_url, size, args.quiet, args.timeout)
                    one_line[kind].append(base_time)
                    times = visit(browser, f"{dash_url}/{name}", size, args.quiet, args.timeout)
                    visits.setdefault(name, {}).update(
                        {which: times.settled, f"{which} visible": times.visible}
                    )
                    print(
                        f"  {which:4} {name or '/':12} {_fmt(times.settled):>8} s, visible part "
                        f"{_fmt(times.visible)} s  (one-line page {_fmt(base_time)} s)",
                        flush=True,
                    )
        return visits, one_line


def _fmt(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.2f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "—" if value is None or not base else f"{value / base:.1f}x"


def main(argv: list[str] | None = None) -> int:
    """Run the rounds; print one table per round and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh server pairs (default 1)")
    parser.add_argument(
        "--pages", nargs="+", default=list(PAGES), help=f"URL paths (default: {' '.join(PAGES)})"
    )
    parser.add_argument("--width", type=int, default=1366, help="viewport width (default 1366)")
    parser.add_argument("--height", type=int, default=768, help="viewport height (default 768)")
    parser.add_argument("--quiet", type=int, default=1000, help="ms without change that mean settled (1000)")
    parser.add_argument(
        "--timeout", type=float, default=240.0, help="seconds before a page counts as timeout"
    )
    args = parser.parse_args(argv)
    # a `kill` or `timeout` ends the run through the `finally` blocks, which stop the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chromium = find_chromium()
    if chromium is None:
        print("bench_page_speed: error: Debian's Chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    rounds = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for index in range(args.rounds):
                before = load_average()
                print(f"round {index + 1} (load average {before})", flush=True)
                rounds.append(run_round(browser, args.pages, args))
                print(f"  load average after: {load_average()}", flush=True)
        finally:
            browser.close()

    def med(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return statistics.median(kept) if kept and len(kept) == len(values) else None

    base_cold = med([v for _, one in rounds for v in one["cold"]])
    base_warm = med([v for _, one in rounds for v in one["warm"]])
    print(
        f"\none-line page: cold {_fmt(base_cold)} s, warm {_fmt(base_warm)} s (median over visits and rounds)"
    )
    print(
        "\n| page | first visit (s) | second visit (s) | first ÷ one-line | second ÷ one-line "
        "| second visit, visible part (s) |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.pages:
        cold = med([visits[name]["cold"] for visits, _ in rounds])
        warm = med([visits[name]["warm"] for visits, _ in rounds])
        seen = med([visits[name]["warm visible"] for visits, _ in rounds])
        print(
            f"| {name or '/'} | {_fmt(cold)} | {_fmt(warm)} | {_ratio(cold, base_cold)} | {_ratio(warm, base_warm)} "
            f"| {_fmt(seen)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
