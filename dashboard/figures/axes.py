"""Shared axis and style helpers of the figure builders.

The palette, image-like axes, power-of-ten log ticks, a bar axis that shows differences, the export config and
wrapped subplot titles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "COLORS",
    "LOG_FLOOR",
    "axes_as_image",
    "log_ticks",
    "plotly_config",
    "value_axis_range",
    "with_wrapped_titles",
    "wrap_title",
]


#: the line and bar colours, in order
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

#: variances are clipped to this before ``log10``
LOG_FLOOR = 1e-6


def plotly_config(export_format: str = "png", filename: str = "figure") -> dict[str, object]:
    """``st.plotly_chart(config=...)``: the camera button exports PNG or SVG at 2x."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": export_format, "filename": filename, "scale": 2},
    }


def axes_as_image(fig: go.Figure) -> None:
    """Draw ``fig``'s axes like an image's: no ticks or grid, y downwards, square pixels (in place)."""
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(
        showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x"
    )


def log_ticks() -> dict[str, Any]:
    """``update_xaxes`` / ``update_yaxes`` options of a log axis with ticks at powers of ten (``10^k``)."""
    return {"type": "log", "exponentformat": "power", "dtick": 1}


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

    For :func:`dashboard.figures.images.image_grid`, :func:`dashboard.figures.maps.heatmap_grid` and the like:
    titles are wrapped by :func:`wrap_title` and set in ``font_size``, with the top margin grown by the extra
    lines, so that many methods with long names (uploaded files, run labels) keep readable, non-overlapping
    titles. The figure title is unchanged.
    """
    out = go.Figure(fig)
    out.for_each_annotation(lambda note: note.update(text=wrap_title(note.text, width), font_size=font_size))
    lines = max((str(note.text).count("<br>") + 1 for note in out.layout.annotations), default=1)
    top = out.layout.margin.t if out.layout.margin.t is not None else 40
    out.update_layout(margin_t=top + (font_size + 3) * (lines - 1))
    if out.layout.title.text:  # keep the figure title at the top, clear of the taller subplot titles
        out.update_layout(title={"y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 10}})
    return out
