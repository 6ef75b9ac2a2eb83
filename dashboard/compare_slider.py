"""An offline before/after slider that shows exact pixels.

Both images are embedded as lossless PNG data URIs (no CDN, no JPEG re-encoding) and drawn with
``image-rendering: pixelated`` at an integer zoom, so what the reader sees are the model's 8-bit output pixels.
Dragging the handle (or using the arrow keys on the range input) only moves a CSS ``clip-path`` in the browser:
no round trip to the server, so it stays instant on large images.

:func:`slider_html` is pure (testable); :func:`render_compare_slider` hands it to ``st.iframe``.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

__all__ = ["png_data_uri", "render_compare_slider", "slider_html"]


def png_data_uri(image: np.ndarray) -> str:
    """Encode an ``(H, W, 3)`` or ``(H, W)`` uint8 array as a lossless PNG ``data:`` URI."""
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8 (exact 8-bit pixels); got {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3); got {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
  body {{ margin: 0; font-family: sans-serif; font-size: 13px; }}
  .gv-frame {{ display: inline-block; max-width: 100%; overflow: auto; max-height: {frame_height}px;
                border: 1px solid #ccc; vertical-align: top; }}
  .gv-stage {{ position: relative; width: {width}px; height: {height}px; cursor: ew-resize;
               user-select: none; touch-action: none; }}
  .gv-stage img {{ position: absolute; top: 0; left: 0; width: {width}px; height: {height}px;
                   image-rendering: pixelated; image-rendering: crisp-edges; pointer-events: none; }}
  .gv-handle {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #fff;
                box-shadow: 0 0 0 1px #000; pointer-events: none; }}
  .gv-label {{ position: absolute; top: 4px; padding: 1px 6px; background: rgba(0,0,0,.6); color: #fff;
               border-radius: 3px; pointer-events: none; }}
  .gv-controls {{ display: flex; gap: 8px; align-items: center; margin-top: 4px; width: {width}px;
                  max-width: 100%; }}
  .gv-controls input {{ flex: 1; }}
</style></head><body>
<div class="gv-frame"><div class="gv-stage" id="gv-stage" data-pos="{initial}" data-zoom="{zoom}">
  <img id="gv-right" alt="{right_label}" src="{right_src}">
  <img id="gv-left" alt="{left_label}" src="{left_src}" style="clip-path: inset(0 {clip_right}% 0 0)">
  <div class="gv-handle" id="gv-handle" style="left: {initial}%"></div>
  <div class="gv-label" style="left: 4px">{left_label}</div>
  <div class="gv-label" style="right: 4px">{right_label}</div>
</div></div>
<div class="gv-controls"><span>{left_label}</span>
  <input type="range" id="gv-range" min="0" max="1000" value="{initial_milli}" aria-label="slider position">
  <span>{right_label}</span></div>
<script>
(function () {{
  const stage = document.getElementById("gv-stage");
  const left = document.getElementById("gv-left");
  const handle = document.getElementById("gv-handle");
  const range = document.getElementById("gv-range");
  function setPos(pct) {{
    pct = Math.max(0, Math.min(100, pct));
    left.style.clipPath = "inset(0 " + (100 - pct) + "% 0 0)";
    handle.style.left = pct + "%";
    stage.dataset.pos = pct.toFixed(2);
    range.value = Math.round(pct * 10);
    window.gvLastUpdate = performance.now();
  }}
  function fromEvent(ev) {{
    const box = stage.getBoundingClientRect();
    setPos((ev.clientX - box.left) / box.width * 100);
  }}
  let dragging = false;
  stage.addEventListener("pointerdown", (ev) => {{ dragging = true; stage.setPointerCapture(ev.pointerId);
                                                   fromEvent(ev); }});
  stage.addEventListener("pointermove", (ev) => {{ if (dragging) fromEvent(ev); }});
  stage.addEventListener("pointerup", () => {{ dragging = false; }});
  range.addEventListener("input", () => setPos(range.value / 10));
}})();
</script></body></html>
"""


def slider_html(
    left: np.ndarray,
    right: np.ndarray,
    left_label: str,
    right_label: str,
    zoom: int = 1,
    initial: float = 50.0,
    frame_height: int = 640,
) -> str:
    """HTML (inline CSS/JS, PNG data URIs) of a before/after slider between two same-size uint8 images.

    Args:
        left: ``(H, W, 3)`` uint8, shown left of the handle.
        right: ``(H, W, 3)`` uint8, shown right of the handle.
        left_label: caption of ``left``.
        right_label: caption of ``right``.
        zoom: integer magnification (nearest neighbour, so pixels stay exact).
        initial: handle position in percent.
        frame_height: the scrollable frame's maximum height in CSS pixels.

    Raises:
        ValueError: the images differ in size, or ``zoom`` is not a positive integer.
    """
    if left.shape[:2] != right.shape[:2]:
        raise ValueError(f"left and right must have the same size; got {left.shape} and {right.shape}")
    if isinstance(zoom, bool) or not isinstance(zoom, int) or zoom < 1:
        raise ValueError(f"zoom must be a positive int; got {zoom!r}")
    height, width = left.shape[:2]
    initial = float(min(max(initial, 0.0), 100.0))
    return _TEMPLATE.format(
        width=width * zoom,
        zoom=zoom,
        height=height * zoom,
        frame_height=frame_height,
        initial=f"{initial:.2f}",
        initial_milli=round(initial * 10),
        clip_right=f"{100.0 - initial:.2f}",
        left_src=png_data_uri(left),
        right_src=png_data_uri(right),
        left_label=html.escape(left_label),
        right_label=html.escape(right_label),
    )


def render_compare_slider(
    left: np.ndarray, right: np.ndarray, left_label: str, right_label: str, zoom: int = 1
) -> None:
    """Show the slider in the current Streamlit container (the only function here that touches Streamlit).

    The HTML is ours (labels are escaped), embedded with ``st.iframe``.
    """
    import streamlit as st

    frame_height = min(left.shape[0] * zoom, 640)
    st.iframe(
        slider_html(left, right, left_label, right_label, zoom=zoom, frame_height=frame_height),
        height=frame_height + 48,
    )
