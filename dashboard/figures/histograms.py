"""Histograms of log10 patch variances."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.axes import COLORS, LOG_FLOOR, log_ticks

__all__ = ["histogram_overlay"]


def histogram_overlay(
    samples: dict[str, np.ndarray],
    title: str = "Patch variance (log10)",
    bins: int = 60,
    highlight: tuple[float, float] | None = None,
    height: int = 340,
) -> go.Figure:
    """Overlaid histograms of ``log10`` patch variances (shared bins, counts on a log axis)."""
    logs = {
        n: np.log10(np.maximum(np.asarray(v, dtype=np.float64).ravel(), LOG_FLOOR))
        for n, v in samples.items()
    }
    every = np.concatenate([v for v in logs.values() if v.size]) if logs else np.zeros(1)
    edges = np.linspace(float(every.min()), float(every.max()) + 1e-9, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig = go.Figure()
    for index, (name, values) in enumerate(logs.items()):
        counts, _ = np.histogram(values, bins=edges)
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=np.where(counts > 0, counts, np.nan),
                name=name,
                mode="lines",
                line={"shape": "hvh", "width": 2, "color": COLORS[index % len(COLORS)]},
                connectgaps=False,
                hovertemplate=f"{name}<br>log10 var=%{{x:.2f}}<br>patches=%{{y}}<extra></extra>",
            )
        )
    if highlight is not None:
        fig.add_vrect(x0=highlight[0], x1=highlight[1], fillcolor="orange", opacity=0.2, line_width=0)
    fig.update_layout(
        title=title,
        height=height,
        xaxis_title="log10 patch variance",
        yaxis_title="patches",
        dragmode="select",
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_yaxes(**log_ticks())
    return fig
