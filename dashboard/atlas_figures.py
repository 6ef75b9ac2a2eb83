"""Plotly builders and display adapters of the structure atlas (the Structure atlas page and ``gvcore report``).

Pure functions: data in (an :class:`gvcore.eval.atlas.AtlasResult`, its per-image table or ranked regions), figure or
pixels out. No ``st.*`` and no metric: every number shown comes from :mod:`gvcore.eval.atlas`, which takes it from
:mod:`gvcore.eval.scoring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "RANKING_TITLES",
    "compare_link",
    "enlarge",
    "framed",
    "image_ratio_figure",
    "region_deficit_figure",
]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")

#: what each ranking of :data:`gvcore.eval.atlas.RANKINGS` shows, for headings.
RANKING_TITLES: dict[str, str] = {
    "worst": "Worst regions: largest HR - output variance deficit (mean over the checkpoints)",
    "most_recovered": "Where {b} recovers the most variance relative to {a}",
    "least_recovered": "Where {b} recovers the least variance relative to {a}",
    "overshoot": "Where {b} overshoots: more variance than HR",
}


def enlarge(crop: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an ``(h, w, 3)`` uint8 crop by an integer factor to about ``side`` px.

    Exact pixels, only repeated (no interpolation), so the crop can be read at a glance.
    """
    factor = max(1, side // max(crop.shape[:2]))
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


def framed(crop: np.ndarray, margin: int = 4) -> np.ndarray:
    """``crop`` inside a white margin of ``margin`` px, so crops shown side by side never touch.

    Example:
        >>> framed(np.zeros((2, 3, 3), np.uint8), 1).shape
        (4, 5, 3)
    """
    return np.pad(crop, ((margin, margin), (margin, margin), (0, 0)), constant_values=255)


def compare_link(image: str, scale: int, protocol: str, y: int, x: int, size: int) -> str:
    """Relative URL of the Compare page opened at an image, scale, protocol and zoom crop.

    ``image`` is a bundled sample's name; ``(y, x, size)`` is the zoom crop in HR pixels (read by
    ``pages/compare.py``).
    """
    query = {"image": image, "scale": scale, "protocol": protocol, "top": y, "left": x, "size": size}
    return "./compare?" + urlencode(query)


def image_ratio_figure(table: pd.DataFrame, metric: str = "var_ratio") -> go.Figure:
    """Per-image ``metric`` of each output (dots, one colour per method), HR's first (grey dashes), when in ``table``.

    Args:
        table: the atlas per-image table (``image``, ``method`` and ``metric`` columns).
        metric: a column of the table, e.g. ``var_ratio`` (1 = as much gradient variance as HR).
    """
    fig = go.Figure()
    is_hr = table["method"].astype(str) == "HR"
    hr = table[is_hr].dropna(subset=[metric])
    if len(hr):
        fig.add_trace(
            go.Scatter(
                x=hr["image"],
                y=hr[metric],
                mode="markers",
                name="HR",
                marker={"size": 14, "color": "gray", "symbol": "line-ew-open", "line": {"width": 2}},
                hovertemplate=f"HR<br>%{{x}}<br>{metric}=%{{y:.4f}}<extra></extra>",
            )
        )
    for index, (method, part) in enumerate(table[~is_hr].groupby("method", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=part["image"],
                y=part[metric],
                mode="markers",
                name=str(method),
                marker={"size": 10, "color": _COLORS[index % len(_COLORS)]},
                hovertemplate=f"{method}<br>%{{x}}<br>{metric}=%{{y:.4f}}<extra></extra>",
            )
        )
    if metric == "var_ratio":
        fig.add_hline(y=1.0, line={"dash": "dash", "color": "gray"}, annotation_text="HR = 1")
    fig.update_layout(
        title=f"{metric} per image",
        yaxis_title=metric,
        height=360,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.25, "title": {"text": "output"}},
    )
    return fig


def region_deficit_figure(regions: Sequence[object], methods: Sequence[str], title: str = "") -> go.Figure:
    """Grouped bars: each output's variance deficit (``V_HR - V_out``) in each ranked region, in rank order.

    HR is the zero line (its deficit to itself); a bar below it is an output with more variance than HR there.

    Args:
        regions: :class:`gvcore.eval.atlas.AtlasRegion` items of one ranking.
        methods: outputs to draw (keys of each region's ``deficits``).
        title: figure title.
    """
    labels = [f"#{k} {r.image} ({r.x},{r.y})" for k, r in enumerate(regions, start=1)]  # type: ignore[attr-defined]
    fig = go.Figure()
    for index, method in enumerate(methods):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[r.deficits.get(method, np.nan) for r in regions],  # type: ignore[attr-defined]
                name=method,
                marker_color=_COLORS[index % len(_COLORS)],
                hovertemplate=f"{method}<br>%{{x}}<br>deficit=%{{y:.4g}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title=title or "Variance deficit (V_HR - V_out) per ranked region",
        yaxis_title="V_HR - V_out (HR = 0)",
        height=360,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.35, "title": {"text": "output"}},
    )
    fig.add_hline(y=0, line={"color": "gray", "width": 1})
    return fig
