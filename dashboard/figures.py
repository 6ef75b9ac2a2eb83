"""Pure Plotly figure builders: data in, ``go.Figure`` out. They never call ``st.*`` and never mutate inputs.

Images go to the browser as lossless PNG (``go.Image(source=...)``) so pixels are exact; maps go as heatmaps
with hover text naming the patch position and value. :data:`PLOTLY_CONFIG` turns on PNG/SVG export.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.compare_slider import png_data_uri

__all__ = [
    "crop_figure",
    "deficit_overlay",
    "forest_plot",
    "gain_scatter",
    "heatmap_grid",
    "histogram_overlay",
    "image_grid",
    "mean_variance_bars",
    "metric_bars",
    "plotly_config",
    "sweep_figure",
    "tradeoff_figure",
    "training_curves",
    "value_axis_range",
    "variance_heatmap",
]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_LOG_FLOOR = 1e-6


def plotly_config(export_format: str = "png", filename: str = "figure") -> dict[str, object]:
    """``st.plotly_chart(config=...)``: the camera button exports PNG or SVG at 2x."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": export_format, "filename": filename, "scale": 2},
    }


def _axes_as_image(fig: go.Figure) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(
        showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x"
    )


def image_grid(
    images: dict[str, np.ndarray], columns: int = 4, height: int = 360, title: str | None = None
) -> go.Figure:
    """Side-by-side uint8 images with **synchronised zoom and pan** (all subplots share their axes)."""
    names = list(images)
    cols = max(1, min(columns, len(names)))
    rows = -(-len(names) // cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.01, vertical_spacing=0.06
    )
    for index, name in enumerate(names):
        img = images[name]
        fig.add_trace(
            go.Image(
                source=png_data_uri(img),
                name=name,
                hovertemplate=f"{name}<br>x=%{{x}}, y=%{{y}}<extra></extra>",
            ),
            row=index // cols + 1,
            col=index % cols + 1,
        )
    fig.update_xaxes(matches="x", showticklabels=False, showgrid=False)
    fig.update_yaxes(matches="y", showticklabels=False, showgrid=False, scaleanchor="x")
    fig.update_layout(
        height=height * rows, margin={"l": 4, "r": 4, "t": 70 if title else 40, "b": 4}, title=title
    )
    return fig


def _patch_hover(shape: tuple[int, int], patch: int, stride: int, factor: int = 1) -> np.ndarray:
    """Hover text per map cell: the patch's row/col and top-left pixel (the first patch of a pooled block)."""
    rows, cols = np.indices(shape)
    rows, cols = rows * factor, cols * factor
    text = np.char.add(np.char.add("patch (row ", rows.astype(str)), np.char.add(", col ", cols.astype(str)))
    text = np.char.add(text, np.char.add(") at pixel y=", (rows * stride).astype(str)))
    text = np.char.add(text, np.char.add(", x=", (cols * stride).astype(str)))
    suffix = f", {patch}x{patch}" if factor == 1 else f", mean of {factor}x{factor} patches"
    return np.char.add(text, suffix)


def variance_heatmap(
    values: np.ndarray,
    title: str,
    patch_size: int,
    stride: int,
    log: bool = True,
    highlight: np.ndarray | None = None,
    height: int = 380,
    colorscale: str = "Viridis",
    display_factor: int = 1,
) -> go.Figure:
    """A patch-variance map (log10 colour scale by default); hover names the patch's position and value.

    ``display_factor`` > 1 says ``values`` was average-pooled by that factor for display (hover follows).

    Args:
        values: ``(h, w)`` map, one value per patch.
        title: figure title.
        patch_size: patch side in pixels (for the hover text).
        stride: patch step in pixels (for the hover text).
        log: colour by ``log10(value)``.
        highlight: optional boolean ``(h, w)`` mask; those patches are outlined in white.
        height: figure height in pixels.
        colorscale: Plotly colour scale name.
        display_factor: the average-pooling factor already applied to ``values`` (1 = none).
    """
    z = np.log10(np.maximum(values, _LOG_FLOOR)) if log else values
    hover = _patch_hover(values.shape, patch_size, stride, display_factor)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            customdata=values,
            text=hover,
            colorscale=colorscale,
            colorbar={"title": "log10 var" if log else "var"},
            hovertemplate="%{text}<br>variance=%{customdata:.4g}<extra></extra>",
        )
    )
    if highlight is not None and highlight.any():
        mask = np.where(highlight, 1.0, np.nan)
        fig.add_trace(
            go.Heatmap(
                z=mask,
                colorscale=[[0, "rgba(255,255,255,0.85)"], [1, "rgba(255,255,255,0.85)"]],
                showscale=False,
                hoverinfo="skip",
                name="selected",
            )
        )
    fig.update_layout(title=title, height=height, margin={"l": 4, "r": 4, "t": 40, "b": 4})
    _axes_as_image(fig)
    return fig


def heatmap_grid(
    maps: dict[str, np.ndarray],
    columns: int = 3,
    height: int = 320,
    colorscale: str = "RdBu",
    symmetric: bool = True,
    title: str | None = None,
    zmax: float | None = None,
    zmin: float | None = None,
) -> go.Figure:
    """Maps (e.g. Gx/Gy, log variance) side by side with one shared colour range and synchronised zoom.

    ``symmetric``: the range is ``[-zmax, zmax]`` (diverging maps); otherwise ``[zmin, zmax]``, by default the
    0.5th and 99.5th percentiles over all maps.
    """
    names = list(maps)
    cols = max(1, min(columns, len(names)))
    rows = -(-len(names) // cols)
    every = np.concatenate([np.asarray(m, dtype=np.float32).ravel() for m in maps.values()])
    if symmetric:
        limit = zmax if zmax is not None else float(np.percentile(np.abs(every), 99.5)) or 1.0
        low = -limit
    else:
        limit = zmax if zmax is not None else float(np.percentile(every, 99.5))
        low = zmin if zmin is not None else float(np.percentile(every, 0.5))
        if low >= limit:
            limit = low + 1.0
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.02, vertical_spacing=0.08
    )
    for index, name in enumerate(names):
        fig.add_trace(
            go.Heatmap(
                z=maps[name].astype(np.float32),
                colorscale=colorscale,
                zmin=low,
                zmax=limit,
                showscale=index == 0,
                name=name,
                hovertemplate=f"{name}<br>x=%{{x}}, y=%{{y}}<br>value=%{{z:.3g}}<extra></extra>",
            ),
            row=index // cols + 1,
            col=index % cols + 1,
        )
    fig.update_xaxes(matches="x", showticklabels=False, showgrid=False)
    fig.update_yaxes(matches="y", showticklabels=False, showgrid=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(
        height=height * rows, margin={"l": 4, "r": 4, "t": 70 if title else 40, "b": 4}, title=title
    )
    return fig


def histogram_overlay(
    samples: dict[str, np.ndarray],
    title: str = "Patch variance (log10)",
    bins: int = 60,
    highlight: tuple[float, float] | None = None,
    height: int = 340,
) -> go.Figure:
    """Overlaid histograms of ``log10`` patch variances (shared bins, counts on a log axis)."""
    logs = {
        n: np.log10(np.maximum(np.asarray(v, dtype=np.float64).ravel(), _LOG_FLOOR))
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
                line={"shape": "hvh", "width": 2, "color": _COLORS[index % len(_COLORS)]},
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
        yaxis_type="log",
        yaxis_exponentformat="power",
        yaxis_dtick=1,
        dragmode="select",
        margin={"l": 4, "r": 4, "t": 40, "b": 4},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def mean_variance_bars(table: pd.DataFrame, title: str = "Mean gradient variance per method") -> go.Figure:
    """Grouped bars of mean Gx and Gy patch variance per method (``method, var_gx, var_gy`` columns)."""
    fig = go.Figure()
    for column, label, color in (("var_gx", "Gx", _COLORS[0]), ("var_gy", "Gy", _COLORS[1])):
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
                    marker_color=_COLORS[index % len(_COLORS)],
                )
            )
    else:
        fig.add_trace(go.Bar(x=summary[group].astype(str), y=summary[metric], marker_color=_COLORS[0]))
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


def value_axis_range(values: pd.Series, pad: float = 0.15) -> list[float] | None:
    """A bar axis that shows differences: from just below the smallest value, not from 0, when they are close.

    Bars of 30.1 and 30.3 dB drawn from 0 look equal; when the smallest value is more than ``1 / pad`` times the
    spread away from 0, the axis starts ``pad`` of the way below it (and the chart says so by its ticks). Returns
    ``None`` (Plotly's own range, from 0) otherwise, or without finite values.

    Example:
        >>> value_axis_range(pd.Series([30.1, 30.3]))
        [30.07, 30.33]
        >>> value_axis_range(pd.Series([0.1, 0.9])) is None
        True
    """
    finite = pd.to_numeric(values, errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
    if finite.empty:
        return None
    low, high = float(finite.min()), float(finite.max())
    spread = max(high - low, 1e-12)
    if low <= 0 or low < spread / pad:
        return None
    return [round(low - pad * spread, 10), round(high + pad * spread, 10)]


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
                marker={"size": 9, "color": _COLORS[index % len(_COLORS)]},
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
                        "color": _COLORS[run_index % len(_COLORS)],
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
        fig.update_yaxes(type="log", exponentformat="power", dtick=1)
    return fig


def deficit_overlay(
    gray: np.ndarray,
    deficit: np.ndarray,
    patch_size: int,
    stride: int,
    title: str = "Variance deficit",
    opacity: float = 0.6,
    height: int = 420,
    display_factor: int = 1,
) -> go.Figure:
    """The per-patch ``log10(V_sr / V_hr)`` map over the (gray) image: blue = variance lost, red = gained.

    ``display_factor`` is how much ``gray`` was downsampled from the analysed image (patch centres follow).
    """
    ph, pw = deficit.shape
    x = (np.arange(pw) * stride + patch_size / 2) / display_factor
    y = (np.arange(ph) * stride + patch_size / 2) / display_factor
    limit = max(float(np.nanmax(np.abs(deficit))), 1e-3)
    fig = go.Figure()
    fig.add_trace(go.Image(source=png_data_uri(gray), hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=deficit,
            x=x,
            y=y,
            text=_patch_hover(deficit.shape, patch_size, stride),
            colorscale="RdBu_r",
            zmin=-limit,
            zmax=limit,
            opacity=opacity,
            colorbar={"title": "log10 SR/HR"},
            hovertemplate="%{text}<br>log10(V_sr/V_hr)=%{z:+.2f}<extra></extra>",
        )
    )
    fig.update_layout(title=title, height=height, margin={"l": 4, "r": 4, "t": 40, "b": 4})
    _axes_as_image(fig)
    return fig


def crop_figure(
    images: dict[str, np.ndarray],
    box: tuple[int, int, int, int],
    reference: str,
    height: int = 260,
    title_width: int = 18,
) -> go.Figure:
    """A paper-style zoom figure: ``reference`` with the crop box drawn, then the same crop of every image.

    Args:
        images: name -> ``(H, W, 3)`` uint8, all the same size.
        box: ``(top, left, size_y, size_x)`` in pixels.
        reference: the name of the image drawn whole, with the box.
        height: height of one row in pixels.
        title_width: panel titles are wrapped at this many characters (:func:`wrap_title`).
    """
    return crop_grid(images, box, reference, columns=len(images) + 1, height=height, title_width=title_width)


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
                line={"color": _COLORS[index % len(_COLORS)]},
            )
        )
    if x in ("gv_weight", "lambda") and (sweep[x] > 0).all():
        fig.update_xaxes(type="log", exponentformat="power", dtick=1)
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
        color = _COLORS[index % len(_COLORS)]
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
            marker={"size": 10, "color": [_COLORS[1] if e else _COLORS[0] for e in excludes]},
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


#: The deficit colour scale, explicit so no named-scale convention can flip it: the lowest value (variance lost,
#: ``log10(V_out / V_HR) < 0``) is blue, 0 is white, the highest (variance gained) is red. Plotly's *Python*
#: ``"RdBu"`` runs red -> blue (plotly.js's runs blue -> red), which is why a name is not used here.
DEFICIT_COLORSCALE: list[list[float | str]] = [
    [0.0, "rgb(5,48,97)"],
    [0.25, "rgb(67,147,195)"],
    [0.5, "rgb(247,247,247)"],
    [0.75, "rgb(214,96,77)"],
    [1.0, "rgb(103,0,31)"],
]


def deficit_grid(
    deficits: dict[str, np.ndarray],
    columns: int = 4,
    height: int = 320,
    title: str = "log10(V_output / V_HR): blue = variance lost, red = gained",
    zmax: float | None = None,
    title_width: int = 18,
) -> go.Figure:
    """Variance-deficit maps side by side on one symmetric range with :data:`DEFICIT_COLORSCALE`.

    Args:
        deficits: name -> ``(h, w)`` map of ``log10(V_out / V_HR)`` (negative = variance lost).
        columns: maps per row.
        height: height of one row in pixels.
        title: figure title.
        zmax: the colour range is ``[-zmax, zmax]``; default the 99.5th percentile of ``|deficit|``.
        title_width: map titles are wrapped at this many characters (:func:`wrap_title`).

    The colour bar is titled with the quantity and says which colour means lost, so bar and title agree.
    """
    fig = heatmap_grid(deficits, columns=columns, height=height, symmetric=True, title=title, zmax=zmax)
    fig = with_wrapped_titles(fig, title_width)
    fig.update_traces(
        colorscale=DEFICIT_COLORSCALE,
        colorbar={"title": {"text": "log10(V_out/V_HR)<br>blue = lost<br>red = gained"}},
    )
    return fig


def wrap_title(text: str, width: int = 18, max_lines: int = 3) -> str:
    """Break ``text`` into ``<br>``-joined lines (Plotly's line break) of at most ``width`` characters.

    So titles of narrow subplots do not run into each other: breaks at spaces; words longer than ``width``
    (file names) after ``_``, ``-`` or ``.``, else hard. Past ``max_lines`` the last line ends in an ellipsis
    (hover texts keep the full name).

    Example:
        >>> wrap_title("my espcn · mine.safetensors (ESPCN)", 20)
        'my espcn ·<br>mine.safetensors<br>(ESPCN)'
        >>> wrap_title("another_run_lambda_0.1_seed_2.safetensors", 18)
        'another_run_<br>lambda_0.1_seed_2.<br>safetensors'
    """
    import re

    pieces: list[tuple[str, bool]] = []  # (piece, starts a new word)
    for word in text.split():
        first = True
        for part in re.split(r"(?<=[_.\-])", word) if len(word) > width else [word]:
            while len(part) > width:
                pieces.append((part[:width], first))
                part, first = part[width:], False
            if part:
                pieces.append((part, first))
                first = False
    lines: list[str] = []
    for piece, new_word in pieces:
        joined = (lines[-1] + (" " if new_word else "") + piece) if lines else piece
        if lines and len(joined) <= width:
            lines[-1] = joined
        else:
            lines.append(piece)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: max(width - 1, 1)] + "…"]
    return "<br>".join(lines) or text


def with_wrapped_titles(fig: go.Figure, width: int = 18, font_size: int = 12) -> go.Figure:
    """A copy of a subplot grid whose subplot titles are wrapped at ``width`` characters.

    For :func:`image_grid`, :func:`heatmap_grid` and the like: titles are wrapped by :func:`wrap_title` and
    set in ``font_size``, with the top margin grown by the extra lines, so that many methods with long names
    (uploaded files, run labels) keep readable, non-overlapping titles. The figure title is unchanged.
    """
    out = go.Figure(fig)
    out.for_each_annotation(lambda note: note.update(text=wrap_title(note.text, width), font_size=font_size))
    lines = max((str(note.text).count("<br>") + 1 for note in out.layout.annotations), default=1)
    top = out.layout.margin.t if out.layout.margin.t is not None else 40
    out.update_layout(margin_t=top + (font_size + 3) * (lines - 1))
    if out.layout.title.text:  # keep the figure title at the top, clear of the taller subplot titles
        out.update_layout(title={"y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 10}})
    return out


#: the whole reference image next to the crops only locates the box: sent at most this many pixels on a side.
REFERENCE_MAX_SIDE = 256


def _overview(image: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """``image`` box-averaged by the smallest integer step that brings its longer side to ``max_side`` or less."""
    step = max(1, -(-max(image.shape[:2]) // max_side))
    if step == 1:
        return image, 1
    from PIL import Image

    return np.asarray(Image.fromarray(image).reduce(step)), step


def crop_grid(
    images: dict[str, np.ndarray],
    box: tuple[int, int, int, int],
    reference: str,
    columns: int = 4,
    height: int = 260,
    title_width: int = 18,
) -> go.Figure:
    """A paper-style zoom figure in rows: the reference with the box drawn, then each image's crop.

    The crops are sent at full resolution; the whole reference at most :data:`REFERENCE_MAX_SIDE` pixels on a
    side (box-averaged, drawn in the full image's coordinates), as it only shows where the box lies. With many
    methods, one row squeezes the panels until their titles overlap; here there are at most
    ``columns`` panels per row and long titles are wrapped onto several lines. The crops share their zoom.

    Args:
        images: name -> ``(H, W, 3)`` uint8, all the same size.
        box: ``(top, left, size_y, size_x)`` in pixels.
        reference: the name of the image drawn whole, with the box.
        columns: panels per row (the reference counts as one).
        height: height of one row in pixels.
        title_width: titles are wrapped at this many characters.
    """
    top, left, size_y, size_x = box
    names = list(images)
    panels = len(names) + 1
    cols = max(1, min(columns, panels))
    rows = -(-panels // cols)
    titles = [wrap_title(f"{reference} (full)", title_width)] + [wrap_title(n, title_width) for n in names]
    lines = max(t.count("<br>") + 1 for t in titles)
    gap = (18 * lines + 16) / (height * rows)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.015,
        vertical_spacing=min(gap, 0.9 / max(rows - 1, 1)) if rows > 1 else 0.0,
    )
    overview, step = _overview(images[reference], REFERENCE_MAX_SIDE)
    # drawn in the full image's pixel coordinates (each overview pixel covers step x step of them): the box is exact
    offset = (step - 1) / 2
    fig.add_trace(
        go.Image(source=png_data_uri(overview), x0=offset, y0=offset, dx=step, dy=step, hoverinfo="skip"),
        row=1,
        col=1,
    )
    fig.add_shape(
        type="rect",
        x0=left - 0.5,
        y0=top - 0.5,
        x1=left + size_x - 0.5,
        y1=top + size_y - 0.5,
        line={"color": "red", "width": 2},
        row=1,
        col=1,
    )
    for index, name in enumerate(names, start=1):
        crop = np.ascontiguousarray(images[name][top : top + size_y, left : left + size_x])
        fig.add_trace(
            go.Image(source=png_data_uri(crop), name=name, hoverinfo="skip"),
            row=index // cols + 1,
            col=index % cols + 1,
        )
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False)
    for index in range(2, panels + 1):
        fig.update_xaxes(matches="x2", row=(index - 1) // cols + 1, col=(index - 1) % cols + 1)
        fig.update_yaxes(matches="y2", row=(index - 1) // cols + 1, col=(index - 1) % cols + 1)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=height * rows, margin={"l": 4, "r": 4, "t": 18 * lines + 16, "b": 4})
    return fig


__all__ += [
    "DEFICIT_COLORSCALE",
    "REFERENCE_MAX_SIDE",
    "crop_grid",
    "deficit_grid",
    "with_wrapped_titles",
    "wrap_title",
]


def crops_row(
    crops: dict[str, np.ndarray], titles: dict[str, str] | None = None, height: int = 330
) -> go.Figure:
    """The same region of several images side by side, large, with **synchronised zoom and pan**.

    Args:
        crops: name -> ``(h, w, 3)`` uint8, all the same size (sent as lossless PNG).
        titles: name -> panel title (e.g. with a variance-ratio badge); default the name.
        height: figure height in pixels.
    """
    names = list(crops)
    shown = [(titles or {}).get(n, n) for n in names]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=shown, horizontal_spacing=0.01)
    for index, name in enumerate(names, start=1):
        fig.add_trace(
            go.Image(
                source=png_data_uri(np.ascontiguousarray(crops[name])),
                name=name,
                hovertemplate=f"{name}<br>x=%{{x}}, y=%{{y}}<extra></extra>",
            ),
            row=1,
            col=index,
        )
    fig.update_xaxes(matches="x", showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(matches="y", showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_annotations(font_size=13)
    lines = max((t.count("<br>") + 1 for t in shown), default=1)
    fig.update_layout(height=height, margin={"l": 2, "r": 2, "t": 18 + 17 * lines, "b": 2})
    return fig


def variance_ratio_bars(table: pd.DataFrame, height: int = 330) -> go.Figure:
    """The share of HR's gradient variance each method keeps (``var_ratio``, HR = 100 %), one labelled bar each.

    Args:
        table: rows with ``method`` and ``var_ratio`` (from :mod:`gvcore.eval.scoring`; HR's row is 1).
        height: figure height in pixels.
    """
    ratios = pd.to_numeric(table["var_ratio"], errors="coerce")
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(table))]
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


__all__ += ["crops_row", "variance_ratio_bars"]
