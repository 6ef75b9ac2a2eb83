"""Bar charts: mean Gx/Gy variance per method, a metric per group, the share of HR's variance kept."""

from __future__ import annotations

import html

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


#: the static bars' look (scoped by the ``gv-bars`` class; the theme's font and text colour are kept)
_BARS_STYLE = """<style>
.gv-bars { font-size: 0.9rem; }
.gv-bars .gv-title { font-weight: 600; margin-bottom: 0.4rem; }
.gv-bars .gv-row { display: grid; grid-template-columns: minmax(0, 11em) minmax(5em, 1fr) 3em; gap: 0.5rem;
  align-items: center; margin: 0.3rem 0; }
.gv-bars .gv-name { overflow-wrap: anywhere; line-height: 1.15; }
.gv-bars .gv-track { position: relative; height: 1.4rem; background: rgba(128, 128, 128, 0.08); }
.gv-bars .gv-bar { position: absolute; left: 0; top: 0; bottom: 0; }
.gv-bars .gv-hr { position: absolute; top: -0.2rem; bottom: -0.2rem; border-left: 2px dashed gray; }
.gv-bars .gv-value { font-variant-numeric: tabular-nums; text-align: right; }
.gv-bars .gv-axis { font-size: 0.8rem; opacity: 0.7; margin-top: 0.4rem; }
</style>"""


def variance_ratio_bars(table: pd.DataFrame) -> str:
    """The share of HR's gradient variance each method keeps (``var_ratio``, HR = 100 %), as static HTML bars.

    HTML and CSS only, no chart library: the landing page's first screen is drawn without waiting for plotly.js
    (about a second of a visit, ``bench/README.md``). One labelled bar per row of ``table`` (its order), the
    colours of :data:`COLORS`, a dashed line at HR's 100 %; an empty or infinite ratio reads "—".

    Args:
        table: rows with ``method`` and ``var_ratio`` (from :mod:`gvcore.eval.scoring`; HR's row is 1).

    Example:
        >>> page = variance_ratio_bars(pd.DataFrame({"method": ["HR", "a<b"], "var_ratio": [1.0, 0.5]}))
        >>> "a&lt;b" in page and "50%" in page and "width:43.48%" in page  # the axis ends at 115 % of HR
        True
        >>> "left:86.96%" in page  # HR's 100 %: the dashed line
        True
    """
    ratios = pd.to_numeric(table["var_ratio"], errors="coerce").to_numpy(dtype=float)
    finite = ratios[np.isfinite(ratios)]
    top = max(float(finite.max()) if finite.size else 1.0, 1.0) * 1.15  # the axis: room for the value labels
    rows = []
    for index, (method, ratio) in enumerate(zip(table["method"].astype(str), ratios, strict=True)):
        known = bool(np.isfinite(ratio))
        width = max(0.0, ratio) / top * 100 if known else 0.0
        rows.append(
            f'<div class="gv-row"><span class="gv-name">{html.escape(method)}</span><span class="gv-track">'
            f'<span class="gv-bar" style="width:{width:.2f}%;background:{COLORS[index % len(COLORS)]}"></span>'
            f'<span class="gv-hr" style="left:{1 / top:.2%}"></span></span>'
            f'<span class="gv-value">{f"{ratio:.0%}" if known else "—"}</span></div>'
        )
    return (
        f'{_BARS_STYLE}<div class="gv-bars"><div class="gv-title">Gradient variance kept</div>{"".join(rows)}'
        '<div class="gv-axis">% of HR\'s gradient variance (SR/HR variance ratio); dashed: HR = 100 %</div></div>'
    )
