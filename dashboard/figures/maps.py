"""Maps drawn as heatmaps: patch-variance maps, grids of maps on one colour range, variance-deficit maps.

Hover text names the patch position and value.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.compare_slider import png_data_uri
from dashboard.figures.axes import LOG_FLOOR, axes_as_image, with_wrapped_titles

__all__ = ["DEFICIT_COLORSCALE", "deficit_grid", "deficit_overlay", "heatmap_grid", "variance_heatmap"]


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

    ``display_factor`` > 1 says ``values`` was average-pooled by that factor for display (hover follows). The
    cells sit at their patch's top-left pixel (the axes are the image's pixels, hidden); the hover is a template
    over those coordinates, not a text per cell, which made a 250x250 map 4.1 MB of JSON instead of 0.8 MB.

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
    z = np.log10(np.maximum(values, LOG_FLOOR)) if log else values
    step = stride * display_factor
    x, y = np.arange(values.shape[1]) * step, np.arange(values.shape[0]) * step
    size = (
        f"{patch_size}x{patch_size}"
        if display_factor == 1
        else f"mean of {display_factor}x{display_factor} patches"
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            customdata=values,
            colorscale=colorscale,
            colorbar={"title": "log10 var" if log else "var"},
            hovertemplate=f"patch at pixel y=%{{y}}, x=%{{x}}, {size}<br>variance=%{{customdata:.4g}}<extra></extra>",
        )
    )
    if highlight is not None and highlight.any():
        mask = np.where(highlight, 1.0, np.nan)
        fig.add_trace(
            go.Heatmap(
                z=mask,
                x=x,
                y=y,
                colorscale=[[0, "rgba(255,255,255,0.85)"], [1, "rgba(255,255,255,0.85)"]],
                showscale=False,
                hoverinfo="skip",
                name="selected",
            )
        )
    fig.update_layout(title=title, height=height, margin={"l": 4, "r": 4, "t": 40, "b": 4})
    axes_as_image(fig)
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

    ``display_factor`` is how much ``gray`` was downsampled from the analysed image: its pixels are drawn that
    far apart, so the axes are the analysed image's pixels and a cell sits at its patch's centre (the hover is a
    template over those coordinates, not a text per cell).
    """
    ph, pw = deficit.shape
    x = np.arange(pw) * stride + patch_size / 2
    y = np.arange(ph) * stride + patch_size / 2
    limit = max(float(np.nanmax(np.abs(deficit))), 1e-3)
    fig = go.Figure()
    fig.add_trace(go.Image(source=png_data_uri(gray), dx=display_factor, dy=display_factor, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=deficit,
            x=x,
            y=y,
            colorscale="RdBu_r",
            zmin=-limit,
            zmax=limit,
            opacity=opacity,
            colorbar={"title": "log10 SR/HR"},
            hovertemplate=(
                f"patch centred at pixel y=%{{y}}, x=%{{x}}, {patch_size}x{patch_size}"
                "<br>log10(V_sr/V_hr)=%{z:+.2f}<extra></extra>"
            ),
        )
    )
    fig.update_layout(title=title, height=height, margin={"l": 4, "r": 4, "t": 40, "b": 4})
    axes_as_image(fig)
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
