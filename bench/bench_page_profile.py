"""Benchmark: where a page's second visit spends its time, on the server and in the browser.

Usage::

    python bench/bench_page_profile.py [--pages observation compare ...] [--visits 3] [--no-server]

**Browser.** The dashboard is served as :mod:`bench.bench_page_speed` serves it (``gvcore dashboard`` with
``HOME`` in a temporary folder, the launcher flags of :mod:`tests.serving`), next to the one-line page. Each page
is visited once to fill the server's caches, then ``--visits`` times, each in a new browser context (a new
session) with V8's sampling profiler running (Chrome DevTools Protocol, one sample every 0.5 ms) from just before
the navigation until the page settled (``bench_page_speed.SETTLED``: script done, charts drawn, no change for
``--quiet`` ms). The samples up to the settle moment are summed by where the renderer's main thread was:

- **plotly**: in plotly.js (the dashboard's own bundle, ``dashboard/static/``, 1.3 MB; or Streamlit's own
  ``PlotlyChart`` chunk, 4.7 MB, for a page that uses ``st.plotly_chart``): evaluating it and drawing the charts,
  including the DOM calls it makes (``getBoundingClientRect``, ``appendChild``, ...);
- **streamlit**: in any other script of Streamlit's frontend (React, widgets, markdown, protobuf decoding) and the
  DOM calls they make;
- **browser**: V8's ``(program)`` bucket (native work not attributed to a script: parsing and compiling
  JavaScript, style, layout and paint triggered from native code);
- **gc**: V8's garbage collector;
- **idle**: the main thread had nothing to do: waiting for the network, the server's script run, timers.

**Server.** Each page's script run in a warm process: Streamlit's ``AppTest`` runs ``dashboard/app.py`` and
switches to the page once (filling this process's caches), then ``--visits`` times in a new ``AppTest`` (a new
session); the median is printed. ``AppTest`` runs the same page script as the server, without the websocket.

Printed: one markdown table, the one-line page first, medians over the visits. The columns are seconds; the
browser columns of a row add up to its settle time within the sampling granularity.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_page_profile.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from bench.bench_page_speed import SETTLED, TRACK_CHANGES  # noqa: E402
from tests.serving import (  # noqa: E402
    CHROMIUM_ARGS,
    dashboard_command,
    find_chromium,
    free_port,
    fresh_home,
    serve,
    serve_one_line,
)

#: URL path -> the page script under pages/ (the dashboard's pages, dashboard/app.py)
PAGES = {
    "observation": "observation.py",
    "explorer": "variance_explorer.py",
    "compare": "compare.py",
    "benchmark": "benchmark.py",
    "atlas": "atlas.py",
    "training": "training_runs.py",
    "snapshots": "snapshots.py",
}
#: the columns of the browser's time, in print order
CATEGORIES = ("plotly", "streamlit", "browser", "gc", "idle")
#: the scripts that hold plotly.js: the dashboard's bundle (dashboard/charts.py) and Streamlit's own chunk
PLOTLY_SCRIPTS = ("plotly-", "PlotlyChart")  # file names: plotly.js builds (plotly-*.js), Streamlit's chunk
#: V8's sampling interval, microseconds
SAMPLING_US = 500


def _category(url: str, name: str) -> str | None:
    """The category of a profile node that ran script ``url`` / native ``name``; ``None``: ask its caller."""
    if url:
        script = url.rsplit("/", 1)[-1]
        return "plotly" if any(name in script for name in PLOTLY_SCRIPTS) else "streamlit"
    return {"(program)": "browser", "(garbage collector)": "gc", "(idle)": "idle", "(root)": "browser"}.get(
        name
    )


def split_profile(profile: dict[str, Any], until_s: float) -> dict[str, float]:
    """Seconds of ``profile`` (a CDP ``Profiler.stop`` profile) by :data:`CATEGORIES`, up to ``until_s`` after its start.

    A sample in a native function without a script (a DOM call such as ``getBoundingClientRect``) counts for the
    nearest caller that ran a script, so a chart's layout queries count as the chart's.
    """
    nodes = {node["id"]: node for node in profile["nodes"]}
    parent = {child: node["id"] for node in profile["nodes"] for child in node.get("children", ())}
    memo: dict[int, str] = {}

    def category(node_id: int) -> str:
        if node_id not in memo:
            frame = nodes[node_id]["callFrame"]
            found = _category(frame["url"], frame["functionName"])
            if found is None:
                found = category(parent[node_id]) if node_id in parent else "browser"
            memo[node_id] = found
        return memo[node_id]

    totals = dict.fromkeys(CATEGORIES, 0.0)
    samples, deltas = profile["samples"], profile["timeDeltas"]
    clock = 0.0
    for index, sample in enumerate(samples):
        clock += deltas[index] / 1e6
        if clock > until_s:
            break
        duration = deltas[index + 1] / 1e6 if index + 1 < len(deltas) else 0.0
        totals[category(sample)] += min(duration, max(0.0, until_s - clock))
    return totals


def profiled_visit(browser: Any, url: str, quiet_ms: int, timeout_s: float) -> tuple[float, dict[str, float]]:
    """Open ``url`` in a new browser context with the profiler on; its settle time and :func:`split_profile`."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(TRACK_CHANGES)
    page = context.new_page()
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": SAMPLING_US})
        cdp.send("Profiler.start")
        page.goto(url, wait_until="commit", timeout=int(timeout_s * 1000))
        page.wait_for_function(SETTLED, arg=quiet_ms, timeout=int(timeout_s * 1000), polling=100)
        settled = float(page.evaluate("window.__lastChange")) / 1000.0
        profile = cdp.send("Profiler.stop")["profile"]
    finally:
        context.close()
    return settled, split_profile(profile, settled)


def server_times(pages: list[str], visits: int) -> dict[str, float]:
    """Median seconds of each page's script run in a warm process (module docstring), by URL path."""
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "dashboard" / "app.py")
    medians = {}
    for name in pages:
        runs = []
        for visit in range(visits + 1):
            at = AppTest.from_file(app, default_timeout=600)
            at.run()
            at.switch_page(f"../pages/{PAGES[name]}")
            start = time.perf_counter()
            at.run()
            if visit:  # the first run fills the caches
                runs.append(time.perf_counter() - start)
            if at.exception:
                raise RuntimeError(f"page {name} raised: {at.exception[0].value}")
        medians[name] = statistics.median(runs)
    return medians


def main(argv: list[str] | None = None) -> int:
    """Profile the pages, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--pages", nargs="+", default=list(PAGES), choices=list(PAGES), help="pages to profile"
    )
    parser.add_argument("--visits", type=int, default=3, help="profiled visits per page (default 3)")
    parser.add_argument("--quiet", type=int, default=500, help="ms without change that mean settled (500)")
    parser.add_argument("--timeout", type=float, default=300.0, help="s a visit may take (300)")
    parser.add_argument("--no-server", action="store_true", help="skip the server's script times")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("bench_page_profile: error: Debian's Chromium is not installed", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    rows: dict[str, list[tuple[float, dict[str, float]]]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="gvlab-profile-") as tmp, sync_playwright() as pw:
        home = Path(tmp)
        env = fresh_home(home)
        work = home / "work"
        work.mkdir()
        port = free_port()
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        with (
            serve(dashboard_command(port), port, env=env, cwd=work) as dashboard,
            serve_one_line(work, env=env) as baseline,
        ):
            urls = {"one-line page": baseline.url, **{name: f"{dashboard.url}/{name}" for name in args.pages}}
            for url in urls.values():  # the server's first visit of each page
                profiled_visit(browser, url, args.quiet, args.timeout)
            for _ in range(args.visits):  # interleaved, so machine load drifts hit every page alike
                for name, url in urls.items():
                    rows[name].append(profiled_visit(browser, url, args.quiet, args.timeout))
        browser.close()
        if not args.no_server:
            for key, value in fresh_home(home / "appt").items():
                os.environ[key] = value
            server = server_times(args.pages, args.visits)
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    header = ["page", "settled", "server script", *CATEGORIES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, visits in rows.items():
        settled = statistics.median(v[0] for v in visits)
        parts = [statistics.median(v[1][c] for v in visits) for c in CATEGORIES]
        script = "—" if args.no_server or name not in PAGES else f"{server[name]:.2f}"
        print(f"| {name} | {settled:.2f} | {script} | " + " | ".join(f"{p:.2f}" for p in parts) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
