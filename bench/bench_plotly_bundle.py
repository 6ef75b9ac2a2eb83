"""Benchmark: what a plotly.js build costs a new browser session before and while it draws its first chart.

Usage::

    python bench/bench_plotly_bundle.py [--visits 9] [--also PATH ...]

Each build is served from a temporary folder on 127.0.0.1 and loaded into a blank page in headless Chromium (the
flags of :mod:`tests.serving`), once per visit in a new browser context (nothing cached, as a new dashboard
session): **load** is the time from inserting its ``<script>`` to its ``onload`` (download, parse, compile and run
the module), **first draw** the time of ``Plotly.newPlot`` of one figure with the four trace types the dashboard
draws (scatter, bar, heatmap, image) in a 2x2 grid, the call that compiles the drawing code on first use. Visits
alternate between the builds, so load drifts hit all of them.

Builds: the dashboard's own (:data:`dashboard.charts.BUNDLE`, ``scripts/plotly_bundle/``) and, as the baseline,
the full plotly.js that the pinned plotly.py ships (``plotly/package_data/plotly.min.js``, the same version);
``--also`` adds other builds, e.g. plotly.js's cartesian bundle from ``npm pack plotly.js-cartesian-dist-min``.
Printed: the medians and their ratios to the dashboard's build.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_plotly_bundle.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from tests.serving import CHROMIUM_ARGS, find_chromium  # noqa: E402

#: the page each build is loaded into: ``measure(src)`` resolves to ``[load ms, first draw ms]``
PAGE = """<!doctype html><html><body><div id="chart" style="width: 900px; height: 600px"></div><script>
window.measure = (src) => new Promise((resolve, reject) => {
  const start = performance.now();
  const script = document.createElement("script");
  script.src = src;
  script.onerror = () => reject(new Error("could not load " + src));
  script.onload = () => {
    const loaded = performance.now();
    const z = Array.from({length: 64}, (_, i) => Array.from({length: 64}, (_, j) => Math.sin(i / 5) * j));
    const pixels = Array.from({length: 32}, (_, i) => Array.from({length: 32}, (_, j) => [8 * i, 8 * j, 128]));
    const data = [
      {type: "scatter", x: [1, 2, 3], y: [2, 1, 3]},
      {type: "bar", x: ["a", "b"], y: [3, 4], xaxis: "x2", yaxis: "y2"},
      {type: "heatmap", z: z, xaxis: "x3", yaxis: "y3"},
      {type: "image", z: pixels, xaxis: "x4", yaxis: "y4"},
    ];
    Plotly.newPlot("chart", data, {grid: {rows: 2, columns: 2, pattern: "independent"}})
      .then(() => resolve([loaded - start, performance.now() - loaded]), reject);
  };
  document.head.appendChild(script);
});
</script></body></html>"""


def builds(also: list[Path]) -> dict[str, Path]:
    """``{name: file}``: the dashboard's build, plotly.py's full plotly.js, then ``also``."""
    import plotly

    from dashboard.charts import BUNDLE

    found = {
        BUNDLE: ROOT / "dashboard" / "static" / BUNDLE,
        "plotly.min.js (plotly.py's full build)": Path(plotly.__file__).parent
        / "package_data"
        / "plotly.min.js",
    }
    for path in also:
        found[path.name] = path
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"no such build: {', '.join(missing)}")
    return found


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure(found: dict[str, Path], visits: int) -> dict[str, list[tuple[float, float]]]:
    """``{name: [(load ms, first draw ms), ...]}``, one pair per visit (module docstring)."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("Debian's Chromium is not installed (apt-get install -y chromium)")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in found}
    with tempfile.TemporaryDirectory(prefix="gvlab-plotly-") as tmp:
        folder = Path(tmp)
        (folder / "page.html").write_text(PAGE, encoding="utf-8")
        served = {}
        for index, (name, path) in enumerate(found.items()):
            served[name] = f"/build{index}.js"
            shutil.copyfile(path, folder / f"build{index}.js")
        with serve_folder(folder) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                for _ in range(visits):
                    for name in found:
                        context = browser.new_context()
                        page = context.new_page()
                        page.goto(f"{base}/page.html")
                        load, draw = page.evaluate("src => measure(src)", served[name])
                        times[name].append((float(load), float(draw)))
                        context.close()
            finally:
                browser.close()
    return times


def main(argv: list[str] | None = None) -> int:
    """Time every build (module docstring) and print the table; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visits", type=int, default=9, help="new sessions per build (9)")
    parser.add_argument("--also", type=Path, nargs="*", default=[], help="more plotly.js builds to time")
    args = parser.parse_args(argv)
    found = builds(args.also)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.visits} visits per build")
    times = measure(found, args.visits)
    reference = next(iter(found))
    ref_load = statistics.median(t[0] for t in times[reference])
    ref_total = statistics.median(t[0] + t[1] for t in times[reference])
    print("\n| build | size (MB) | load (ms) | first draw (ms) | load ÷ ours | load + draw ÷ ours |")
    print("|---|---|---|---|---|---|")
    for name, path in found.items():
        load = statistics.median(t[0] for t in times[name])
        draw = statistics.median(t[1] for t in times[name])
        total = statistics.median(t[0] + t[1] for t in times[name])
        size = path.stat().st_size / 1e6
        print(
            f"| {name} | {size:.2f} | {load:.0f} | {draw:.0f} | {load / ref_load:.2f}x | {total / ref_total:.2f}x |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
