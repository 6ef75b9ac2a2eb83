"""Gradient Variance Lab -- the dashboard's table of contents.

Run from the repository root: ``python -m streamlit run dashboard/app.py`` (binds to 127.0.0.1, see
``.streamlit/config.toml``). Set ``GVLAB_ASSETS`` to read checkpoints and results from another assets root.
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

PAGES = ROOT / "pages"

st.set_page_config(page_title="Gradient Variance Lab", page_icon="📐", layout="wide")

navigation = st.navigation(
    [
        st.Page(
            PAGES / "observation.py", title="The observation", icon="🔍", url_path="observation", default=True
        ),
        st.Page(PAGES / "variance_explorer.py", title="Variance explorer", icon="🧭", url_path="explorer"),
        st.Page(PAGES / "compare.py", title="Compare checkpoints", icon="⚖️", url_path="compare"),
        st.Page(PAGES / "benchmark.py", title="Benchmark", icon="📊", url_path="benchmark"),
        st.Page(PAGES / "training_runs.py", title="Training runs", icon="📈", url_path="training"),
    ]
)
navigation.run()
