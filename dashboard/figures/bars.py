"""Bar charts: mean Gx/Gy variance per method, a metric per group, the share of HR's variance kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.axes import COLORS, value_axis_range

__all__ = ["mean_variance_bars", "metric_bars", "variance_ratio_bars"]


def mean_variance_bars(table: pd.DataFrame, title: str = "Mean gradient variance per method") -> go.Figure:
    """Grouped bars of mean Gx and Gy patch variance per method (``method, var_gx, var_gy`` columns)."""
    fig = go.Figure()
    for column, label, color in (("var_gx", "Gx", COLORS[0]), ("var_gy", "Gy", COLORS[1])):
        fig.add_trace(go.Bar(x=table["method"], y=table[column], name=label, marker_color=color))
    fig.update_layout(
        barmode="group",
        title=title,
        yaxis_title="mean patch variance",
        height=340,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
    )
    return fig


def metric_bars(
    table: pd.DataFrame,
    metric: str,
    group: str = "method",
    color: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Bars of ``metric`` per ``group`` (optionally coloured by a second column), mean over rows."""
    keys = [group] + ([color] if color and color != group else [])
    summary = table.groupby(keys, dropna=False, sort=False)[metric].mean().reset_index()
    fig = go.Figure()
    if color and color != group:
        for index, (name, part) in enumerate(summary.groupby(color, sort=False)):
            fig.add_trace(
                go.Bar(
                    x=part[group].astype(str),
                    y=part[metric],
                    name=str(name),
                    marker_color=COLORS[index % len(COLORS)],
                )
            )
    else:
        fig.add_trace(go.Bar(x=summary[group].astype(str), y=summary[metric], marker_color=COLORS[0]))
    fig.update_layout(
        barmode="group",
        title=title or f"mean {metric}",
        yaxis_title=metric,
        height=340,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend_title_text=color or "",
    )
    fig.update_yaxes(range=value_axis_range(summary[metric]))
    return fig


def variance_ratio_bars(table: pd.DataFrame, height: int = 330) -> go.Figure:
    """The share of HR's gradient variance each method keeps (``var_ratio``, HR = 100 %), one labelled bar each.

    Args:
        table: rows with ``method`` and ``var_ratio`` (from :mod:`gvcore.eval.scoring`; HR's row is 1).
        height: figure height in pixels.
    """
    ratios = pd.to_numeric(table["var_ratio"], errors="coerce")
    colors = [COLORS[i % len(COLORS)] for i in range(len(table))]
    fig = go.Figure(
        go.Bar(
            x=ratios * 100,
            y=table["method"].astype(str),
            orientation="h",
            marker_color=colors,
            text=[f"{r:.0%}" if np.isfinite(r) else "—" for r in ratios],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1f} % of HR's gradient variance<extra></extra>",
        )
    )
    fig.add_vline(x=100, line={"dash": "dash", "color": "gray"})
    top = float(np.nanmax(ratios.to_numpy() * 100)) if len(ratios) else 100.0
    fig.update_xaxes(
        title_text="gradient variance kept, % of HR (SR/HR variance ratio)", range=[0, max(top, 100) * 1.15]
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title={"text": "Gradient variance kept", "font": {"size": 14}},
        height=height,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
    )
    return fig
