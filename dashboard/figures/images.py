"""Images side by side: whole outputs with synchronised zoom, paper-style zoom crops, a row of large crops.

Images go to the browser as lossless PNG (``go.Image(source=...)``) so pixels are exact.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.compare_slider import png_data_uri
from dashboard.figures.axes import wrap_title

__all__ = ["REFERENCE_MAX_SIDE", "crop_figure", "crop_grid", "crops_html", "crops_row", "image_grid"]


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


def crops_html(crops: dict[str, np.ndarray], captions: dict[str, str] | None = None) -> str:
    """The same region of several images side by side as static HTML: exact pixels, enlarged by the browser.

    Lossless PNGs inline (``data:`` URIs, no request), drawn with ``image-rendering: pixelated`` (each pixel a
    square, no interpolation) at an equal share of the width, each with its caption (default: its name).
    HTML only, no chart library: shown as soon as it arrives (see :func:`dashboard.figures.bars.variance_ratio_bars`).

    Example:
        >>> page = crops_html({"HR": np.zeros((2, 2, 3), np.uint8), "a&b": np.ones((2, 2, 3), np.uint8)})
        >>> page.count("<img") == 2 and "a&amp;b" in page and "pixelated" in page
        True
    """
    figures = "".join(
        f'<figure><img src="{png_data_uri(np.ascontiguousarray(crop))}" alt="{html.escape(name, quote=True)}">'
        f"<figcaption>{html.escape((captions or {}).get(name, name))}</figcaption></figure>"
        for name, crop in crops.items()
    )
    return (
        "<style>.gv-crops { display: flex; gap: 8px; } .gv-crops figure { flex: 1 1 0; min-width: 0; margin: 0; }"
        " .gv-crops img { width: 100%; display: block; image-rendering: pixelated; }"
        " .gv-crops figcaption { font-size: 0.85rem; opacity: 0.75; text-align: center; margin-top: 0.3rem;"
        f' overflow-wrap: anywhere; }}</style><div class="gv-crops">{figures}</div>'
    )
