"""View blocks shared by the Benchmark, Structure atlas, Training runs and Training snapshots pages.

Every widget whose state defines what a page shows is bound to the URL (``bind="query-params"``) under a short,
page-prefixed key (``bm_…``, ``atl_…``, ``tr_…``, ``snap_…``), so a link reopens the same view; a value equal
to the widget's default is left out of the URL. The default checkpoints are the landing page's: the L1 / L1+GV
pair :func:`dashboard.catalog.default_arch` picks at the smallest scale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import analysis, catalog, loaders, state, widgets
from dashboard.figures.axes import with_wrapped_titles
from dashboard.figures.maps import heatmap_grid
from dashboard.safety import UploadError, list_images_under, without_paths

__all__ = [
    "LOG_VARIANCE_TITLE",
    "PROTOCOLS",
    "URL",
    "ServerFolder",
    "default_choices",
    "default_logs",
    "default_pair_caption",
    "hr_first",
    "landing_pair",
    "log_variance_maps",
    "protocol_radio",
    "root_labels",
    "server_folder",
    "titled_legend",
]

#: the two scoring protocols, the default first.
PROTOCOLS = ["standard", "official"]
#: ``bind`` of every widget whose state defines the view.
URL: Final = "query-params"


def protocol_radio(container: Any, key: str, help: str | None = None) -> str:
    """The protocol (standard / official) as a horizontal radio bound to the URL under ``key``."""
    return str(container.radio("Protocol", PROTOCOLS, horizontal=True, key=key, bind=URL, help=help))


def landing_pair(protocol: str) -> tuple[str | None, int | None]:
    """The landing page's default ``(architecture, scale)`` under ``protocol``.

    The smallest scale of the protocol's bundled checkpoints, and :func:`dashboard.catalog.default_arch` there
    (``None`` each when there is no checkpoint, or no L1 / L1+GV pair).
    """
    folder = state.checkpoints_for(protocol)
    infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
    usable = [i for i in infos if "error" not in i and i.get("arch") and i.get("scale")]
    scales = sorted({int(i["scale"]) for i in usable})
    if not scales:
        return None, None
    return catalog.default_arch(usable, loaders.shipped_eval(protocol), scales[0]), scales[0]


def default_choices(offered: list[dict[str, Any]], protocol: str) -> list[str]:
    """The choices (``info["choice"]``) of the landing page's default pair among ``offered`` checkpoints.

    The L1 model first, then L1+GV (:func:`dashboard.catalog.default_pair_labels` at the smallest scale); without
    such a pair, the first two offered.
    """
    usable = [i for i in offered if "error" not in i and i.get("arch") and i.get("scale")]
    scales = sorted({int(i["scale"]) for i in usable})
    if not scales:
        return [str(i["choice"]) for i in offered[:2]]
    labels = catalog.default_pair_labels(usable, scales[0], loaders.shipped_eval(protocol))
    by_label = {str(i["label"]): str(i["choice"]) for i in reversed(usable)}
    return [by_label[label] for label in labels if label in by_label]


def default_logs(labels: list[str]) -> list[str]:
    """The training logs to preselect: the shipped seed-0 logs of the landing page's pair, when both are there.

    Else :func:`dashboard.catalog.default_log_selection` (the first pixel-loss / +GV pair of seed 0).
    """
    arch, scale = landing_pair("standard")
    if arch is not None:
        pair = [f"shipped/{arch}-x{scale}-l1-s0", f"shipped/{arch}-x{scale}-l1-gv-s0"]
        if all(label in labels for label in pair):
            return pair
    return catalog.default_log_selection(labels)


@dataclass(frozen=True)
class ServerFolder:
    """A folder picked under a data root: where it is (for the scorers, never shown) and its images."""

    root: Path
    sub: str
    images: list[Path]

    @property
    def path(self) -> str:
        """The folder as a path string (handed to gvcore; pages show folder names only)."""
        return str(self.root / self.sub)


def root_labels(roots: list[Path]) -> dict[int, str]:
    """Each root's folder name (a repeated name numbered), so no server path reaches the page.

    Example:
        >>> root_labels([Path("/a/data"), Path("/b/data"), Path("/c/set")])
        {0: 'data (1)', 1: 'data (2)', 2: 'set'}
    """
    names = [r.name for r in roots]
    return {i: name + (f" ({i + 1})" if names.count(name) > 1 else "") for i, name in enumerate(names)}


def server_folder(container: Any, prefix: str) -> ServerFolder | None:
    """A data root (by folder name) and a subfolder inside it, both in the URL (``{prefix}_root``, ``{prefix}_sub``).

    Shows why when no root is configured or the subfolder cannot be browsed (``st.info`` / ``st.error``, no
    server path) and returns ``None`` then.
    """
    roots = [r for r in state.data_roots() if r.is_dir()]
    if not roots:
        st.info(
            "No server-side image folder is configured: set GVLAB_DATA_ROOTS (folders separated by "
            f"'{os.pathsep}') or create a `{state.data_roots()[0].name}` folder in the repository."
        )
        return None
    index = container.selectbox(
        "Root",
        range(len(roots)),
        format_func=widgets.labels(root_labels(roots)),
        key=f"{prefix}_root",
        bind=URL,
    )
    sub = str(container.text_input("Subfolder (inside the root)", "", key=f"{prefix}_sub", bind=URL))
    try:
        images = list_images_under(roots[index], sub)
    except UploadError as err:
        st.error(f"Cannot browse this folder — {without_paths(str(err))}")
        return None
    return ServerFolder(roots[index], sub, images)


def titled_legend(fig: go.Figure, title: str) -> go.Figure:
    """``fig`` with its legend titled ``title`` (what the colours tell apart)."""
    fig.update_layout(legend_title_text=title)
    return fig


def hr_first(table: pd.DataFrame, column: str = "method") -> pd.DataFrame:
    """``table`` with HR's rows first (the reference every comparison is read against), order otherwise kept.

    Example:
        >>> hr_first(pd.DataFrame({"method": ["a", "HR", "b"]}))["method"].tolist()
        ['HR', 'a', 'b']
    """
    if column not in table:
        return table
    is_hr = table[column].astype(str) == "HR"
    return pd.concat([table[is_hr], table[~is_hr]], ignore_index=True)


#: the title of every page's log-variance maps
LOG_VARIANCE_TITLE = "log10 patch variance (mean of Gx, Gy), 8x8 patches"


def log_variance_maps(variances: Mapping[str, np.ndarray], key: str, title_width: int = 18) -> None:
    """Each method's ``log10`` patch-variance map, side by side on one colour range, with synchronised zoom.

    Args:
        variances: name -> ``(h, w)`` patch-variance map (mean of Gx and Gy); pooled here for display.
        key: the chart's widget key.
        title_width: map titles are wrapped at this many characters.
    """
    log_var = {
        name: np.log10(np.maximum(analysis.pool_for_display(v, state.HEATMAP_MAX_SIDE)[0], 1e-6))
        for name, v in variances.items()
    }
    widgets.chart(
        with_wrapped_titles(
            heatmap_grid(
                log_var,
                columns=min(4, len(log_var)),
                colorscale="Viridis",
                symmetric=False,
                title=LOG_VARIANCE_TITLE,
            ),
            title_width,
        ),
        "variance maps",
        key=key,
    )


def default_pair_caption() -> str:
    """The sentence that says how a page preselected its L1 / L1+GV pair (:func:`dashboard.catalog.default_arch`)."""
    return f"Pair chosen by rule: {catalog.DEFAULT_ARCH_RULE}"
