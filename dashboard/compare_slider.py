"""An offline before/after slider that shows exact pixels, with a pixel readout, flicker and difference views.

Both images are embedded as lossless PNG data URIs (no CDN, no JPEG re-encoding) and drawn with
``image-rendering: pixelated`` at an integer zoom, so what the reader sees are the model's 8-bit output pixels.
Everything interactive runs in the browser, with no round trip to the server:

- ``"slider"``: dragging the handle (or the arrow keys on the range input) moves a CSS ``clip-path``;
- ``"flicker"``: the two images alternate on a timer, and a click on the image switches them by hand;
- ``"difference"``: the signed ``left - right`` (mean over RGB), amplified by a stated factor and drawn on mid grey,
  as every page draws a difference (:func:`dashboard.analysis.difference_image`).

Hovering shows the pixel under the cursor (``x, y`` in image pixels) and both images' RGB values, read from the
embedded PNGs. The handle position and the scroll centre are kept in the browser's ``sessionStorage`` under
``state_key``, so re-rendering the slider at another zoom keeps the handle where it was and scrolls it into view.

:func:`slider_html` is pure (testable); :func:`render_compare_slider` hands the
HTML to ``st.iframe``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
from typing import Literal

import numpy as np
from PIL import Image

from dashboard.analysis import (
    DEFAULT_DIFFERENCE_FACTOR,
    DIFFERENCE_CONVENTION,
    difference_image,
    signed_difference,
)
from dashboard.bounded_cache import ByteBudgetCache

__all__ = ["VIEW_MODES", "png_data_uri", "render_compare_slider", "slider_html"]

ViewMode = Literal["slider", "flicker", "difference"]
#: The views :func:`slider_html` can draw.
VIEW_MODES: tuple[str, ...] = ("slider", "flicker", "difference")


#: encoded images by content: a page's second visit (a new session) re-sends the same pixels, and hashing them
#: costs ~1/25 of encoding them (``bench/README.md``); bounded in bytes like the dashboard's other caches
_ENCODED = ByteBudgetCache("png", 64 * 1024 * 1024, 30 * 60)


def png_data_uri(image: np.ndarray) -> str:
    """Encode an ``(H, W, 3)`` or ``(H, W)`` uint8 array as a lossless PNG ``data:`` URI.

    The same pixels (same shape and bytes) are encoded once per process.
    """
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8 (exact 8-bit pixels); got {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3); got {image.shape}")
    pixels = np.ascontiguousarray(image)
    key = (pixels.shape, hashlib.blake2b(pixels.data, digest_size=16).hexdigest())
    return _ENCODED.get_or_compute(key, lambda: _encode_png(pixels))


def _encode_png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><style>
  body {{ margin: 0; font-family: sans-serif; font-size: 13px; }}
  .gv-frame {{ display: inline-block; max-width: 100%; overflow: auto; max-height: {frame_height}px;
                border: 1px solid #ccc; vertical-align: top; }}
  .gv-stage {{ position: relative; width: {width}px; height: {height}px; cursor: {cursor};
               user-select: none; touch-action: none; }}
  .gv-stage img {{ position: absolute; top: 0; left: 0; width: {width}px; height: {height}px;
                   image-rendering: pixelated; image-rendering: crisp-edges; pointer-events: none; }}
  .gv-handle {{ position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #fff;
                box-shadow: 0 0 0 1px #000; pointer-events: none; z-index: 2; }}
  .gv-knob {{ position: absolute; left: -7px; width: 12px; height: 24px; margin-top: -12px; border-radius: 6px;
              background: #fff; border: 1px solid #000; }}
  .gv-label {{ position: absolute; top: 4px; padding: 1px 6px; background: rgba(0,0,0,.6); color: #fff;
               border-radius: 3px; pointer-events: none; z-index: 3; }}
  .gv-controls {{ display: flex; gap: 8px; align-items: center; margin-top: 4px; width: {width}px;
                  max-width: 100%; min-width: 260px; }}
  .gv-controls input {{ flex: 1; }}
  .gv-readout {{ margin-top: 2px; font-family: monospace; white-space: nowrap; overflow: hidden;
                 text-overflow: ellipsis; }}
  [hidden] {{ display: none !important; }}
</style></head><body>
<div class="gv-frame" id="gv-frame"><div class="gv-stage" id="gv-stage" data-pos="{initial}" data-zoom="{zoom}"
     data-mode="{mode}" data-key="{state_key}" data-interval="{interval}" data-width="{image_width}"
     data-height="{image_height}">
  <img id="gv-right" alt="{right_label}" src="{right_src}">
  <img id="gv-left" alt="{left_label}" src="{left_src}" style="clip-path: inset(0 {clip_right}% 0 0)">
  {difference_img}
  <div class="gv-handle" id="gv-handle" style="left: {initial}%"{handle_hidden}><div class="gv-knob"
       id="gv-knob" style="top: 50%"></div></div>
  <div class="gv-label" id="gv-left-label" style="left: 4px"{left_label_hidden}>{left_label}</div>
  <div class="gv-label" id="gv-right-label" style="right: 4px"{right_label_hidden}>{right_label}</div>
  <div class="gv-label" id="gv-diff-label" style="left: 4px"{diff_label_hidden}>{diff_label}</div>
</div></div>
<div class="gv-controls"><span>{left_label}</span>
  <input type="range" id="gv-range" min="0" max="1000" value="{initial_milli}" aria-label="slider position"
         {range_hidden}>
  <button type="button" id="gv-play"{play_hidden}>Pause</button>
  <span id="gv-showing"{play_hidden}></span>
  <span>{right_label}</span></div>
<div class="gv-readout" id="gv-readout">{readout_hint}</div>
<script>
(function () {{
  const frame = document.getElementById("gv-frame");
  const stage = document.getElementById("gv-stage");
  const left = document.getElementById("gv-left");
  const right = document.getElementById("gv-right");
  const handle = document.getElementById("gv-handle");
  const knob = document.getElementById("gv-knob");
  const range = document.getElementById("gv-range");
  const readout = document.getElementById("gv-readout");
  const play = document.getElementById("gv-play");
  const showing = document.getElementById("gv-showing");
  const leftName = document.getElementById("gv-left-label").textContent;
  const rightName = document.getElementById("gv-right-label").textContent;
  const mode = stage.dataset.mode;
  const W = parseInt(stage.dataset.width, 10), H = parseInt(stage.dataset.height, 10);
  const storeKey = "gvlab-slider:" + stage.dataset.key;
  let saved = null;
  try {{ saved = JSON.parse(window.sessionStorage.getItem(storeKey) || "null"); }} catch (e) {{ saved = null; }}
  let pos = parseFloat(stage.dataset.pos), centreY = 0.5;
  if (saved && typeof saved.pos === "number") pos = saved.pos;
  if (saved && typeof saved.cy === "number") centreY = saved.cy;
  function save() {{
    try {{ window.sessionStorage.setItem(storeKey, JSON.stringify({{pos: pos, cy: centreY}})); }} catch (e) {{}}
  }}
  function placeKnob() {{
    knob.style.top = (frame.scrollTop + Math.min(frame.clientHeight, stage.offsetHeight) / 2) + "px";
  }}
  function setPos(pct) {{
    pct = Math.max(0, Math.min(100, pct));
    pos = pct;
    if (mode === "slider") left.style.clipPath = "inset(0 " + (100 - pct) + "% 0 0)";
    handle.style.left = pct + "%";
    stage.dataset.pos = pct.toFixed(2);
    range.value = Math.round(pct * 10);
    window.gvLastUpdate = performance.now();
    save();
  }}
  function scrollToHandle() {{
    const sw = stage.offsetWidth, sh = stage.offsetHeight;
    frame.scrollLeft = Math.max(0, pos / 100 * sw - frame.clientWidth / 2);
    frame.scrollTop = Math.max(0, centreY * sh - frame.clientHeight / 2);
    placeKnob();
  }}
  frame.addEventListener("scroll", () => {{
    const sh = stage.offsetHeight;
    if (sh > 0) centreY = (frame.scrollTop + frame.clientHeight / 2) / sh;
    placeKnob();
    save();
  }});
  // --- pixel readout: x, y and both images' RGB under the cursor
  let pixels = null;
  function decode(img) {{
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d", {{willReadFrequently: true}});
    context.drawImage(img, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  }}
  function rgb(data, i) {{ return "(" + data[i] + ", " + data[i + 1] + ", " + data[i + 2] + ")"; }}
  function showPixel(ev) {{
    const box = stage.getBoundingClientRect();
    const x = Math.floor((ev.clientX - box.left) / box.width * W);
    const y = Math.floor((ev.clientY - box.top) / box.height * H);
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    if (pixels === null) {{
      try {{ pixels = [decode(left), decode(right)]; }} catch (e) {{ pixels = false; }}
    }}
    let text = "x=" + x + ", y=" + y;
    if (pixels) {{
      const i = (y * W + x) * 4, a = pixels[0], b = pixels[1];
      text += " | " + leftName + ": " + rgb(a, i) + " | " + rightName + ": " + rgb(b, i);
      if (mode === "difference") {{
        text += " | L-R: (" + (a[i] - b[i]) + ", " + (a[i + 1] - b[i + 1]) + ", " + (a[i + 2] - b[i + 2]) + ")";
      }}
    }}
    readout.textContent = text;
    stage.dataset.pixel = x + "," + y;
  }}
  stage.addEventListener("pointerleave", () => {{ delete stage.dataset.pixel; }});
  // --- slider
  let dragging = false;
  function fromEvent(ev) {{
    const box = stage.getBoundingClientRect();
    setPos((ev.clientX - box.left) / box.width * 100);
  }}
  if (mode === "slider") {{
    stage.addEventListener("pointerdown", (ev) => {{ dragging = true; stage.setPointerCapture(ev.pointerId);
                                                     fromEvent(ev); }});
    stage.addEventListener("pointerup", () => {{ dragging = false; }});
    range.addEventListener("input", () => setPos(range.value / 10));
  }}
  stage.addEventListener("pointermove", (ev) => {{ if (dragging) fromEvent(ev); showPixel(ev); }});
  // --- flicker: alternate on a timer; a click switches by hand and pauses
  if (mode === "flicker") {{
    let showLeft = true, timer = null;
    const interval = parseInt(stage.dataset.interval, 10);
    function show() {{
      left.style.clipPath = showLeft ? "inset(0 0 0 0)" : "inset(0 100% 0 0)";
      stage.dataset.showing = showLeft ? "left" : "right";
      showing.textContent = "showing: " + (showLeft ? leftName : rightName);
      document.getElementById("gv-left-label").hidden = !showLeft;
      document.getElementById("gv-right-label").hidden = showLeft;
    }}
    function tick() {{ showLeft = !showLeft; show(); }}
    function pause() {{ if (timer !== null) clearInterval(timer); timer = null; play.textContent = "Play"; }}
    function start() {{
      if (interval > 0) {{ timer = setInterval(tick, interval); play.textContent = "Pause"; }}
      else pause();
    }}
    stage.addEventListener("click", () => {{ pause(); tick(); }});
    play.addEventListener("click", () => {{ if (timer === null) start(); else pause(); }});
    show();
    start();
  }}
  setPos(pos);
  if (document.readyState === "complete") scrollToHandle();
  else window.addEventListener("load", scrollToHandle);
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
    mode: ViewMode = "slider",
    flicker_ms: int = 700,
    difference_factor: int = DEFAULT_DIFFERENCE_FACTOR,
    state_key: str = "slider",
) -> str:
    """HTML (inline CSS/JS, PNG data URIs) of a before/after view of two same-size uint8 images.

    Args:
        left: ``(H, W, 3)`` uint8, shown left of the handle (first in flicker).
        right: ``(H, W, 3)`` uint8, shown right of the handle.
        left_label: caption of ``left``.
        right_label: caption of ``right``.
        zoom: integer magnification (nearest neighbour, so pixels stay exact).
        initial: handle position in percent, unless the browser kept one under ``state_key``.
        frame_height: the scrollable frame's maximum height in CSS pixels.
        mode: ``"slider"``, ``"flicker"`` or ``"difference"`` (see the module docstring).
        flicker_ms: the flicker period in milliseconds; ``0`` switches on click only.
        difference_factor: the amplification of the signed ``left - right`` in ``"difference"`` mode (stated on
            the view; drawn by :func:`dashboard.analysis.difference_image`).
        state_key: the ``sessionStorage`` key under which the browser keeps the handle position and scroll.

    Raises:
        ValueError: the images differ in size, ``zoom`` or ``difference_factor`` is not a positive integer,
            ``flicker_ms`` is negative, or ``mode`` is unknown.
    """
    if left.shape[:2] != right.shape[:2]:
        raise ValueError(f"left and right must have the same size; got {left.shape} and {right.shape}")
    if isinstance(zoom, bool) or not isinstance(zoom, int) or zoom < 1:
        raise ValueError(f"zoom must be a positive int; got {zoom!r}")
    if mode not in VIEW_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, VIEW_MODES))}; got {mode!r}")
    if isinstance(flicker_ms, bool) or not isinstance(flicker_ms, int) or flicker_ms < 0:
        raise ValueError(f"flicker_ms must be a non-negative int; got {flicker_ms!r}")
    height, width = left.shape[:2]
    initial = float(min(max(initial, 0.0), 100.0))
    difference_img, diff_label = "", ""
    if mode == "difference":
        if (
            isinstance(difference_factor, bool)
            or not isinstance(difference_factor, int)
            or difference_factor < 1
        ):
            raise ValueError(f"difference_factor must be a positive int; got {difference_factor!r}")
        diff = difference_image(signed_difference(left, right), difference_factor)
        difference_img = f'<img id="gv-diff" alt="difference" src="{png_data_uri(diff)}">'
        diff_label = f"({left_label} - {right_label}) x{difference_factor}"
    hidden = ' hidden=""'
    hints = {
        "slider": "Hover the image for x, y and both images' RGB; drag to move the handle.",
        "flicker": "Hover the image for x, y and both images' RGB; click it to switch by hand.",
        "difference": DIFFERENCE_CONVENTION.format(a="left", b="right", factor=difference_factor)
        + " Hover for the pixels.",
    }
    return _TEMPLATE.format(
        width=width * zoom,
        zoom=zoom,
        height=height * zoom,
        image_width=width,
        image_height=height,
        frame_height=frame_height,
        mode=mode,
        cursor={"slider": "ew-resize", "flicker": "pointer", "difference": "crosshair"}[mode],
        interval=flicker_ms,
        state_key=html.escape(state_key, quote=True),
        initial=f"{initial:.2f}",
        initial_milli=round(initial * 10),
        clip_right=f"{100.0 - initial:.2f}" if mode == "slider" else "0.00",
        left_src=png_data_uri(left),
        right_src=png_data_uri(right),
        difference_img=difference_img,
        left_label=html.escape(left_label),
        right_label=html.escape(right_label),
        diff_label=html.escape(diff_label),
        handle_hidden="" if mode == "slider" else hidden,
        range_hidden="" if mode == "slider" else "hidden",
        play_hidden="" if mode == "flicker" else hidden,
        left_label_hidden="" if mode != "difference" else hidden,
        right_label_hidden="" if mode == "slider" else hidden,
        diff_label_hidden="" if mode == "difference" else hidden,
        readout_hint=html.escape(hints[mode]),
    )


def render_compare_slider(
    left: np.ndarray,
    right: np.ndarray,
    left_label: str,
    right_label: str,
    zoom: int = 1,
    mode: ViewMode = "slider",
    flicker_ms: int = 700,
    difference_factor: int = DEFAULT_DIFFERENCE_FACTOR,
    state_key: str = "slider",
) -> None:
    """Show the view in the current Streamlit container (the only function here that touches Streamlit).

    The HTML is ours (labels are escaped), embedded with ``st.iframe``; arguments as :func:`slider_html`.
    """
    import streamlit as st

    frame_height = min(left.shape[0] * zoom, 640)
    st.iframe(
        slider_html(
            left,
            right,
            left_label,
            right_label,
            zoom=zoom,
            frame_height=frame_height,
            mode=mode,
            flicker_ms=flicker_ms,
            difference_factor=difference_factor,
            state_key=state_key,
        ),
        height=frame_height + 84,
    )
