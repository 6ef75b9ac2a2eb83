"""View blocks that more than one page shows, each written once: the pages compose them in their ``render()``.

A block draws into the current Streamlit container and returns nothing a page has to keep; it takes arrays
the page already holds (they are locals of the page's ``render()``, freed when the run ends).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dashboard import analysis, catalog, state, widgets
from dashboard.figures.axes import with_wrapped_titles
from dashboard.figures.maps import heatmap_grid

__all__ = ["LOG_VARIANCE_TITLE", "default_pair_caption", "log_variance_maps"]

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
