"""Benchmark: what one kind of page element costs a visit, against a one-line Streamlit page.

Usage::

    python bench/bench_page_parts.py [--visits 5] [--parts one-line plotly-1 ...]

Each *part* is a minimal Streamlit page: the one-line page of ``bench_page_speed.py`` plus one kind of element the
dashboard's pages are made of (a Plotly chart, five, drawn by ``st.plotly_chart`` or by the dashboard's chart
element ``dashboard.charts.plot``, a static table of 15 or 120 rows, the interactive grid of
120 rows; the dashboard's own static table, ``dashboard.widgets.html_table``, of 15 rows). All are served side by side with the launcher flags of ``tests/serving.py`` and visited in turn, each
visit in a new browser context (a new session, nothing cached), ``--visits`` times; the first visit of each is left
out (the server's first run). Printed per part: the median settle time (``bench_page_speed.settle_time``: the last
change of the page once it is quiet) and its difference to the one-line page's median, so the sum of a page's
parts says how far below a ratio its elements let it go.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_page_parts.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from bench.bench_page_speed import settle_time  # noqa: E402
from tests.serving import CHROMIUM_ARGS, ONE_LINE_PAGE, find_chromium, free_port, serve, streamlit_command  # noqa: E402

_FRAME = (
    "import numpy as np, pandas as pd\n"
    "frame = pd.DataFrame(np.random.default_rng(0).normal(size=({rows}, 12)), columns=[f'c{{i}}' for i in range(12)])\n"
)
_CHART = "import plotly.graph_objects as go\n"
_PLOT = "from dashboard.charts import plot\n"  # the dashboard's chart element (its own plotly.js bundle)
#: part name -> the code after the one-line page
PARTS = {
    "one-line": "",
    "plotly-1": _CHART + "st.plotly_chart(go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, 2])))\n",
    "plotly-5": _CHART
    + "for i in range(5):\n    st.plotly_chart(go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, i])), key=f'c{i}')\n",
    "chart-1": _CHART + _PLOT + "plot(go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, 2])), {}, key='c')\n",
    "chart-5": _CHART
    + _PLOT
    + "for i in range(5):\n    plot(go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, i])), {}, key=f'c{i}')\n",
    "table-15x12": _FRAME.format(rows=15) + "st.table(frame, hide_index=True)\n",
    "table-120x12": _FRAME.format(rows=120) + "st.table(frame, hide_index=True, height=560)\n",
    "html-table-15x12": _FRAME.format(rows=15)
    + "from dashboard.widgets import html_table\nst.html(html_table(frame))\n",
    "grid-120x12": _FRAME.format(rows=120) + "st.dataframe(frame, hide_index=True)\n",
    "image-4": (
        "import numpy as np\n"
        "st.image([np.random.default_rng(i).integers(0, 255, (256, 256, 3), dtype=np.uint8) for i in range(4)])\n"
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Serve the parts, visit each ``--visits`` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--visits", type=int, default=5, help="visits per part, the first left out (default 5)"
    )
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS), help="parts to serve")
    parser.add_argument("--quiet", type=int, default=1000, help="ms without change that mean settled (1000)")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("bench_page_parts: error: Debian's Chromium is not installed", file=sys.stderr)
        return 2
    parts = ["one-line", *[p for p in args.parts if p != "one-line"]]
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="gvlab-parts-") as tmp,
        ExitStack() as stack,
        sync_playwright() as pw,
    ):
        urls = {}
        for name in parts:
            script = Path(tmp) / f"{name.replace('-', '_')}.py"
            script.write_text(ONE_LINE_PAGE + PARTS[name])
            # the chart parts' plotly.js, served as the dashboard serves it
            if not (Path(tmp) / "static").exists():
                (Path(tmp) / "static").symlink_to(ROOT / "dashboard" / "static")
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the html-table part imports the dashboard
            urls[name] = stack.enter_context(
                serve(streamlit_command(script, port), port, env=env, cwd=Path(tmp))
            ).url
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        times: dict[str, list[float]] = {name: [] for name in parts}
        for _ in range(args.visits):
            for name in parts:
                seconds = settle_time(browser, urls[name], (1366, 768), args.quiet, 60.0)
                if seconds is not None:
                    times[name].append(seconds)
        browser.close()
    base = statistics.median(times["one-line"][1:])
    print("| part | median settle (s) | minus the one-line page (s) | visits |")
    print("|---|---|---|---|")
    for name in parts:
        kept = times[name][1:]
        median = statistics.median(kept) if kept else float("nan")
        print(f"| {name} | {median:.2f} | {median - base:+.2f} | {len(kept)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
