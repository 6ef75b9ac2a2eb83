"""Plotly builders of the Training snapshots page: held-out metrics against training iteration, runs overlaid.

Pure functions (data in, ``go.Figure`` out, no ``st.*``), styled like :mod:`dashboard.figures`. The numbers are
:func:`gvcore.eval.evaluate.summarize` means (one row per checkpoint); nothing is computed here.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.axes import COLORS as _COLORS

__all__ = ["SNAPSHOT_METRICS", "iteration_curve"]

#: metric column -> axis title, in display order.
SNAPSHOT_METRICS: dict[str, str] = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "var_ratio": "SR/HR gradient-variance ratio",
    "gv_distance": "GV distance to HR",
}


def iteration_curve(means: pd.DataFrame, metric: str, baseline: float | None = None) -> go.Figure:
    """One line per series (run) of ``metric`` over ``iteration``; the interpolation baseline as a dashed line.

    Args:
        means: columns ``series``, ``iteration`` and ``metric`` (one row per checkpoint); rows without an
            iteration are left out.
        metric: a key of :data:`SNAPSHOT_METRICS`.
        baseline: the baseline's mean of ``metric`` over the same images (drawn when given and finite);
            the variance ratio also gets HR's level, 1.

    Returns:
        The figure (x: iteration, y: the metric).
    """
    if metric not in SNAPSHOT_METRICS:
        raise ValueError(f"metric must be one of {', '.join(SNAPSHOT_METRICS)}; got {metric!r}")
    fig = go.Figure()
    shown = means.dropna(subset=["iteration"]).sort_values(["series", "iteration"], kind="stable")
    for index, (series, part) in enumerate(shown.groupby("series", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=part["iteration"].astype(float),
                y=part[metric].astype(float),
                mode="lines+markers",
                name=str(series),
                line={"color": _COLORS[index % len(_COLORS)]},
                hovertemplate=f"{series}<br>iteration %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
            )
        )
    if baseline is not None and pd.notna(baseline):
        fig.add_hline(y=float(baseline), line={"dash": "dash", "color": "gray"}, annotation_text="baseline")
    if metric == "var_ratio":
        fig.add_hline(y=1.0, line={"dash": "dot", "color": "black"}, annotation_text="HR")
    fig.update_layout(
        title=SNAPSHOT_METRICS[metric],
        xaxis_title="iteration",
        yaxis_title=metric,
        height=340,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.3, "title": {"text": "run"}},
    )
    return fig
