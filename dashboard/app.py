"""Gradient Variance Lab -- the dashboard's table of contents.

Serve it with ``gvcore dashboard`` (any working directory, 127.0.0.1), or from the repository root with
``python -m streamlit run dashboard/app.py --server.address 127.0.0.1``. Set ``GVLAB_ASSETS`` to read
checkpoints and results from another assets root.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if (
    str(ROOT) not in sys.path
):  # `streamlit run dashboard/app.py` puts dashboard/, not the repo root, on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import housekeeping, state, widgets  # noqa: E402
from dashboard.safety import assets_label  # noqa: E402

# Installed (wheel), the pages live in dashboard/pages/; in the repository, in the top-level pages/ folder.
PAGES = Path(__file__).resolve().parent / "pages"
if not (PAGES / "observation.py").is_file():
    PAGES = ROOT / "pages"

# every 30 s: release the files of sessions that ended, and hand freed memory back to the OS (one thread per process)
housekeeping.start()
# The server's event loop (static files such as the 4.7 MB Plotly bundle, websocket messages) waits for the GIL
# while a page script computes in its own thread; hand the GIL over more often than Python's default 5 ms, so a
# visit's script run does not hold up the download of the JavaScript its charts need (docs/performance.md).
sys.setswitchinterval(min(sys.getswitchinterval(), state.GIL_SWITCH_INTERVAL_S))

# A favicon made here (an image, not an emoji or icon name, which the browser would fetch from an outside host).
st.set_page_config(page_title="Gradient Variance Lab", page_icon=state.favicon(), layout="wide")

# `.streamlit/config.toml` binds to 127.0.0.1, but Streamlit reads it from the working directory only: started
# from elsewhere it would listen on every interface. Refuse to serve anything then, and say how to start it.
if not state.listens_locally():
    st.error(
        "This server is not bound to 127.0.0.1 (Streamlit read no `.streamlit/config.toml`: it was started from "
        "another directory). Start it from the repository root, or pass `--server.address 127.0.0.1 "
        "--browser.gatherUsageStats false`, or run `gvcore dashboard` (any directory)."
    )
    st.stop()

navigation = st.navigation(
    [
        st.Page(
            PAGES / "observation.py",
            title="The observation",
            icon=":material/visibility:",
            url_path="home",  # the default page is served at "/"; Streamlit gives it no other address
            default=True,
        ),
        # the landing page's own address, /observation (a link to it must not say "Page not found")
        st.Page(
            PAGES / "observation.py",
            title="The observation",
            url_path="observation",
            visibility="hidden",
        ),
        st.Page(
            PAGES / "variance_explorer.py",
            title="Variance explorer",
            icon=":material/grid_on:",
            url_path="explorer",
        ),
        st.Page(
            PAGES / "compare.py", title="Compare checkpoints", icon=":material/compare:", url_path="compare"
        ),
        st.Page(
            PAGES / "benchmark.py", title="Benchmark", icon=":material/leaderboard:", url_path="benchmark"
        ),
        st.Page(
            PAGES / "atlas.py", title="Structure atlas", icon=":material/travel_explore:", url_path="atlas"
        ),
        st.Page(
            PAGES / "training_runs.py",
            title="Training runs",
            icon=":material/show_chart:",
            url_path="training",
        ),
        st.Page(
            PAGES / "snapshots.py",
            title="Training snapshots",
            icon=":material/timeline:",
            url_path="snapshots",
        ),
    ]
)
with st.sidebar:
    st.radio(
        "Figure export format",
        ["png", "svg"],
        horizontal=True,
        key=widgets.FIGURE_FORMAT_KEY,
        help="What the camera button of every chart downloads.",
    )
    # the folder's name only: the page never shows where the server keeps its files
    st.caption(f"Assets: {assets_label(state.assets_root(), state.REPO_ROOT / 'assets')}")
try:  # GVLAB_DEVICE: a bad value or a missing GPU is said once, before any page loads a model
    st.sidebar.caption(f"Models run on: `{state.device()}` (GVLAB_DEVICE)")
except ValueError as err:
    st.error(f"Cannot choose where models run: {err}.")
    st.stop()
navigation.run()
