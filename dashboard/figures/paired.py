"""Paired comparisons of GV against the pixel loss: per-image gains and the forest plot of paired changes."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.axes import COLORS

__all__ = ["forest_plot", "gain_scatter"]


def gain_scatter(gains: pd.DataFrame, metric: str = "psnr") -> go.Figure:
    """Per-image L1 -> L1+GV gain: x = the pixel-loss model's score, y = GV model minus it (0 line drawn)."""
    fig = go.Figure()
    for index, (name, part) in enumerate(gains.groupby("pair", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=part[f"{metric}_base"],
                y=part[f"{metric}_gain"],
                mode="markers",
                name=str(name),
                text=part["image"],
                marker={"size": 9, "color": COLORS[index % len(COLORS)]},
                hovertemplate="%{text}<br>base=%{x:.3f}<br>gain=%{y:+.3f}<extra>" + str(name) + "</extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dash", line_color="gray")
    fig.update_layout(
        title=f"Per-image {metric.upper()} gain of GV over the pixel loss",
        xaxis_title=f"{metric} (pixel loss only)",
        yaxis_title=f"{metric} gain",
        height=380,
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
    )
    return fig


def _forest_label(row: dict[str, object]) -> str:
    """``model xS (protocol, group, n = I images x S seeds)`` for one ``paired.csv`` row (older files: n pairs)."""
    seeds = row.get("n_seeds")
    group = row.get("images")
    where = f"{row['protocol']}, {group}" if group and group != "all" else str(row["protocol"])
    if seeds is None or pd.isna(seeds):
        count = f"n = {int(row['n'])} pairs"  # type: ignore[call-overload]
    else:
        one = " (one seed: seed effect not separable)" if int(seeds) == 1 else ""  # type: ignore[call-overload]
        count = f"{int(row['n'])} images x {int(seeds)} seeds{one}"  # type: ignore[call-overload]
    return f"{row['model']} x{int(row['scale'])} ({where}, {count})"  # type: ignore[call-overload]


def forest_plot(paired: pd.DataFrame, metric: str) -> go.Figure:
    """Mean paired change (L1+GV - L1) with its 95 % CI per model and scale; the zero line marked.

    Args:
        paired: ``paired.csv`` rows (:data:`gvcore.eval.stats.PAIRED_COLUMNS`).
        metric: which ``metric`` rows to draw.
    """
    rows = paired[paired["metric"] == metric].copy()
    rows["row"] = [_forest_label(r) for r in rows.to_dict("records")]
    rows = rows.iloc[::-1]
    excludes = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
    fig = go.Figure(
        go.Scatter(
            x=rows["mean_delta"],
            y=rows["row"],
            mode="markers",
            marker={"size": 10, "color": [COLORS[1] if e else COLORS[0] for e in excludes]},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": rows["ci_high"] - rows["mean_delta"],
                "arrayminus": rows["mean_delta"] - rows["ci_low"],
            },
            text=[f"p = {p:.3g}" for p in rows["p_value"]],
            hovertemplate="%{y}<br>Δ %{x:.4g}<br>%{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_vline(x=0.0, line={"color": "black", "width": 1})
    fig.update_layout(
        title=f"Δ{metric} = (L1+GV) - L1 per image (seeds averaged), 95 % bootstrap CI (red: CI excludes 0)",
        xaxis_title=f"Δ {metric}",
        height=max(260, 34 * len(rows) + 110),
        margin={"l": 4, "r": 4, "t": 50, "b": 4},
    )
    return fig
