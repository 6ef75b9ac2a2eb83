"""Curves: training logs over steps, λ-sweep curves and the λ trade-off."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.axes import COLORS, log_ticks

__all__ = ["sweep_figure", "tradeoff_figure", "training_curves"]


def training_curves(logs: pd.DataFrame, columns: Sequence[str], title: str, log_y: bool = False) -> go.Figure:
    """One line per (run, column) over ``step``; rows where a column is empty are skipped."""
    fig = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot")
    for run_index, (run, part) in enumerate(logs.groupby("run", sort=False)):
        for col_index, column in enumerate(columns):
            if column not in part or part[column].notna().sum() == 0:
                continue
            data = part[["step", column]].dropna()
            fig.add_trace(
                go.Scatter(
                    x=data["step"],
                    y=data[column],
                    mode="lines+markers" if len(data) < 30 else "lines",
                    name=f"{run} · {column}",
                    line={
                        "color": COLORS[run_index % len(COLORS)],
                        "dash": dashes[col_index % len(dashes)],
                    },
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="step",
        height=360,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.25},
    )
    if log_y:
        fig.update_yaxes(**log_ticks())
    return fig


def sweep_figure(sweep: pd.DataFrame, x: str, y: str) -> go.Figure:
    """A λ-sweep curve: ``y`` against ``x``, one line per architecture/scale group when those columns exist."""
    groups = [c for c in ("arch", "scale", "protocol") if c in sweep and sweep[c].nunique() > 1]
    fig = go.Figure()
    parts = sweep.groupby(groups, sort=False) if groups else [("all", sweep)]
    for index, (name, part) in enumerate(parts):
        part = part.sort_values(x)
        label = " ".join(map(str, name)) if isinstance(name, tuple) else str(name)
        weight = next((c for c in ("gv_weight", "lambda") if c in part), None)
        text = part[weight].map(lambda w: f"λ={w:g}") if weight else None
        fig.add_trace(
            go.Scatter(
                x=part[x],
                y=part[y],
                mode="lines+markers+text" if text is not None else "lines+markers",
                text=text,
                textposition="top center",
                name=label,
                line={"color": COLORS[index % len(COLORS)]},
            )
        )
    if x in ("gv_weight", "lambda") and (sweep[x] > 0).all():
        fig.update_xaxes(**log_ticks())
    fig.update_layout(
        title=f"{y} vs {x}",
        xaxis_title=x,
        yaxis_title=y,
        height=380,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
    )
    return fig


def tradeoff_figure(curves: pd.DataFrame, current: float | None = None, title: str = "") -> go.Figure:
    """The λ trade-off: PSNR (left axis) and GV distance (right axis) against the SR/HR variance ratio.

    Args:
        curves: rows with ``lambda``, ``var_ratio``, ``psnr``, ``gv_distance`` and a ``source`` column naming
            each curve (e.g. "this image", "held-out images").
        current: the λ to highlight (a ring on every curve).
        title: figure title.

    HR sits at ratio 1 (dashed line): points right of it have *more* gradient variance than HR (overshoot), which
    the two-sided GV distance counts as error.
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for index, (source, part) in enumerate(curves.groupby("source", sort=False)):
        part = part.sort_values("lambda")
        color = COLORS[index % len(COLORS)]
        text = part["lambda"].map(lambda w: f"λ={w:g}")
        fig.add_trace(
            go.Scatter(
                x=part["var_ratio"],
                y=part["psnr"],
                mode="lines+markers",
                name=f"PSNR, {source}",
                text=text,
                hovertemplate="%{text}<br>ratio %{x:.3f}<br>PSNR %{y:.3f} dB<extra></extra>",
                line={"color": color},
            ),
            secondary_y=False,
        )
        fig.add_trace(
            go.Scatter(
                x=part["var_ratio"],
                y=part["gv_distance"],
                mode="lines+markers",
                name=f"GV distance, {source}",
                text=text,
                hovertemplate="%{text}<br>ratio %{x:.3f}<br>GV distance %{y:.4g}<extra></extra>",
                line={"color": color, "dash": "dot"},
                marker={"symbol": "diamond"},
            ),
            secondary_y=True,
        )
        if current is not None:
            now = part[(part["lambda"] - current).abs() < 1e-12]
            for column, secondary in (("psnr", False), ("gv_distance", True)):
                fig.add_trace(
                    go.Scatter(
                        x=now["var_ratio"],
                        y=now[column],
                        mode="markers",
                        marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}},
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    secondary_y=secondary,
                )
    fig.add_vline(x=1.0, line={"dash": "dash", "color": "gray"}, annotation_text="HR = 1")
    fig.update_xaxes(title_text="SR/HR gradient-variance ratio")
    fig.update_yaxes(title_text="PSNR (dB)", secondary_y=False)
    fig.update_yaxes(title_text="GV distance (lower is better)", secondary_y=True)
    fig.update_layout(
        title=title or "λ trade-off",
        height=400,
        margin={"l": 4, "r": 4, "t": 60, "b": 4},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
