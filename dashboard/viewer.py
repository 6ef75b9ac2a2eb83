"""A viewer for N outputs at once: fit to width, wheel zoom, drag-pan, number keys, hover values, deficit overlay.

One canvas shows one output at a time; all outputs share the view (zoom and pan), so switching with the number
keys ``1``..``N`` (or the buttons) compares the same pixels of every model in place, the way a reader flips
between figures, without losing the region. What no image-comparison anchor offers: an overlay of the
**variance-deficit map** of the shown output against HR (``log10(V_out / V_HR)`` per 8x8 patch, blue = variance
lost, red = variance added, :data:`dashboard.figures.maps.DEFICIT_COLORSCALE`), with adjustable opacity.

Everything runs in the browser (no request to any host, no round trip to the server): the outputs and the overlays
are embedded as lossless PNG data URIs and drawn nearest-neighbour, so the pixels are the model's 8-bit output.
Hovering shows ``x, y`` and every output's RGB at that pixel. The wheel zooms about the cursor (the page does not
scroll while the cursor is on the image), a drag pans, ``0`` fits the image to the width again.

:func:`deficit_overlay` and :func:`viewer_html` are pure (tested, the HTML in headless Chromium);
:func:`render_viewer` hands the HTML to ``st.iframe``. No metric is computed here: the overlay is a display of
patch variances (:func:`gvcore.variance_maps`), like the explorer's maps.
"""

from __future__ import annotations

import html
import json

import numpy as np
import torch

from dashboard.compare_slider import png_data_uri

__all__ = ["DEFICIT_LIMIT", "deficit_overlay", "render_viewer", "viewer_html"]

#: the overlay's colour range: ``|log10(V_out / V_HR)|`` at or beyond this is full colour (a factor of 10)
DEFICIT_LIMIT = 1.0
_FLOOR = (1.0 / 255.0) ** 2  # variances under one 8-bit level squared are invisible (gvcore.eval.scoring)
_BLUE, _WHITE, _RED = np.array([5, 48, 97]), np.array([247, 247, 247]), np.array([103, 0, 31])


def deficit_overlay(output: np.ndarray, hr: np.ndarray, patch: int = 8) -> np.ndarray:
    """The per-patch ``log10(V_out / V_HR)`` of two ``(H, W, 3)`` uint8 images as an ``(h, w, 3)`` uint8 colour map.

    Blue where the output lost gradient variance, white where it matches HR, red where it added variance; one
    pixel per ``patch`` x ``patch`` tile (mean of the Gx and Gy patch variances, gray, Sobel; p = 8 as the paper;
    replicate padding, so the image border is not drawn as an edge).

    Example:
        >>> hr = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
        >>> flat = np.full_like(hr, 128)
        >>> deficit_overlay(flat, hr)[0, 0].tolist()  # all variance lost: full blue
        [5, 48, 97]
        >>> deficit_overlay(hr, hr)[0, 0].tolist()  # the same variance: white
        [247, 247, 247]
    """
    from gvcore.variance import variance_maps

    if output.shape != hr.shape or output.ndim != 3 or output.dtype != np.uint8 or hr.dtype != np.uint8:
        raise ValueError(
            f"output and hr must be (H, W, 3) uint8 of one shape; got {output.shape}, {hr.shape}"
        )

    def variance(image: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        vx, vy = variance_maps(
            tensor, patch_size=patch, padding="replicate"
        )  # no zero-padding edge at borders
        return ((vx + vy) / 2)[0, 0].double().numpy()

    ratio = np.log10((variance(output) + _FLOOR) / (variance(hr) + _FLOOR)) / DEFICIT_LIMIT
    t = np.clip(ratio, -1.0, 1.0)[..., None]
    colours = np.where(t < 0, _WHITE + (_BLUE - _WHITE) * -t, _WHITE + (_RED - _WHITE) * t)
    return np.round(colours).astype(np.uint8)


def viewer_html(
    images: dict[str, np.ndarray],
    overlays: dict[str, np.ndarray] | None = None,
    height: int = 560,
    state_key: str = "viewer",
) -> str:
    """A self-contained HTML page showing ``images`` (name -> ``(H, W, 3)`` uint8, one size) in one shared view.

    Args:
        images: the outputs, in key order (key ``1`` shows the first); at most 9.
        overlays: name -> deficit map (:func:`deficit_overlay`) drawn over that output, optional per name.
        height: the canvas height in CSS pixels (its width follows the frame).
        state_key: ``sessionStorage`` key that keeps zoom, pan, the shown output and the opacity across reruns.

    Returns:
        The HTML; ``window.gvViewer`` exposes ``state()`` (zoom, x, y, index, opacity) for tests.
    """
    names = list(images)
    if not 1 <= len(names) <= 9:
        raise ValueError(f"the viewer shows 1 to 9 images (keys 1-9); got {len(names)}")
    shapes = {images[n].shape for n in names}
    if len(shapes) != 1 or any(images[n].dtype != np.uint8 or images[n].ndim != 3 for n in names):
        raise ValueError(f"images must be (H, W, 3) uint8 of one size; got {sorted(map(str, shapes))}")
    h, w = next(iter(shapes))[:2]
    data = {
        "names": names,
        "images": [png_data_uri(images[n]) for n in names],
        "overlays": [png_data_uri(overlays[n]) if overlays and n in overlays else None for n in names],
        "width": int(w),
        "height": int(h),
        "key": state_key,
    }
    buttons = "".join(
        f'<button data-i="{i}" title="key {i + 1}">{i + 1} · {html.escape(n)}</button>'
        for i, n in enumerate(names)
    )
    return (
        _TEMPLATE.replace("__HEIGHT__", str(int(height)))
        .replace("__BUTTONS__", buttons)
        .replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
    )


def render_viewer(
    images: dict[str, np.ndarray], overlays: dict[str, np.ndarray] | None = None, height: int = 560
) -> None:
    """Show :func:`viewer_html` in the page (``st.iframe``)."""
    import streamlit as st

    st.iframe(viewer_html(images, overlays, height, state_key="cmp-viewer"), height=height + 92)


_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;font:13px sans-serif;color:#222}
#bar{display:flex;flex-wrap:wrap;gap:4px;align-items:center;margin:4px 0}
#bar button{border:1px solid #bbb;background:#f6f6f6;border-radius:4px;padding:2px 6px;cursor:pointer}
#bar button.on{background:#1f77b4;color:#fff;border-color:#1f77b4}
#wrap{position:relative;width:100%;height:__HEIGHT__px;overflow:hidden;background:#ddd;cursor:grab}
canvas{position:absolute;left:0;top:0;image-rendering:pixelated}
#read{min-height:18px;font-family:monospace;white-space:pre}
</style></head><body>
<div id="bar">__BUTTONS__<label>overlay <input id="op" type="range" min="0" max="100" value="0"></label>
<span>wheel: zoom · drag: pan · 1-9: output · 0: fit</span></div>
<div id="wrap" tabindex="0"><canvas id="c"></canvas></div><div id="read"></div>
<script>
const D = __DATA__;
const wrap = document.getElementById("wrap"), c = document.getElementById("c"), g = c.getContext("2d");
const read = document.getElementById("read"), op = document.getElementById("op");
const imgs = [], ovs = [], pix = [];
let saved = {};
try { saved = JSON.parse(sessionStorage.getItem(D.key) || "{}"); } catch (e) { saved = {}; }
const S = {zoom: 0, x: 0, y: 0, index: Math.min(saved.index || 0, D.names.length - 1), opacity: saved.opacity || 0};
op.value = Math.round(S.opacity * 100);
function fit() { S.zoom = wrap.clientWidth / D.width; S.x = 0; S.y = 0; }
function keep() { sessionStorage.setItem(D.key, JSON.stringify(S)); }
function draw() {
  c.width = wrap.clientWidth; c.height = wrap.clientHeight;
  g.imageSmoothingEnabled = false;
  g.setTransform(S.zoom, 0, 0, S.zoom, S.x, S.y);
  g.clearRect(-S.x / S.zoom, -S.y / S.zoom, c.width / S.zoom, c.height / S.zoom);
  if (imgs[S.index] && imgs[S.index].complete) g.drawImage(imgs[S.index], 0, 0);
  const ov = ovs[S.index];
  if (ov && ov.complete && S.opacity > 0) { g.globalAlpha = S.opacity; g.drawImage(ov, 0, 0, D.width, D.height); g.globalAlpha = 1; }
  document.querySelectorAll("#bar button").forEach((b, i) => b.classList.toggle("on", i === S.index));
  keep();
}
function show(i) { if (i >= 0 && i < D.names.length) { S.index = i; draw(); } }
D.images.forEach((src, i) => {
  const im = new Image(); im.onload = () => {
    const t = document.createElement("canvas"); t.width = D.width; t.height = D.height;
    const tg = t.getContext("2d"); tg.drawImage(im, 0, 0); pix[i] = tg.getImageData(0, 0, D.width, D.height).data;
    draw(); }; im.src = src; imgs.push(im);
  const ov = new Image(); if (D.overlays[i]) { ov.onload = draw; ov.src = D.overlays[i]; } ovs.push(D.overlays[i] ? ov : null);
});
wrap.addEventListener("wheel", (e) => {
  e.preventDefault();
  const r = wrap.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
  const f = Math.exp(-e.deltaY * 0.0015), z = Math.min(64, Math.max(0.05, S.zoom * f));
  S.x = mx - (mx - S.x) * (z / S.zoom); S.y = my - (my - S.y) * (z / S.zoom); S.zoom = z; draw();
}, {passive: false});
let drag = null;
wrap.addEventListener("mousedown", (e) => { drag = {x: e.clientX - S.x, y: e.clientY - S.y}; wrap.focus(); });
window.addEventListener("mouseup", () => { drag = null; });
wrap.addEventListener("mousemove", (e) => {
  if (drag) { S.x = e.clientX - drag.x; S.y = e.clientY - drag.y; draw(); }
  const r = wrap.getBoundingClientRect();
  const px = Math.floor((e.clientX - r.left - S.x) / S.zoom), py = Math.floor((e.clientY - r.top - S.y) / S.zoom);
  if (px < 0 || py < 0 || px >= D.width || py >= D.height) { read.textContent = ""; return; }
  const k = 4 * (py * D.width + px);
  read.textContent = `x ${px}, y ${py}  ` + D.names.map((n, i) => pix[i] ?
    `${i + 1} ${n}: ${pix[i][k]},${pix[i][k + 1]},${pix[i][k + 2]}` : "").join("  ");
});
window.addEventListener("keydown", (e) => {
  if (e.key >= "1" && e.key <= "9") show(Number(e.key) - 1);
  else if (e.key === "0") { fit(); draw(); }
});
document.querySelectorAll("#bar button").forEach((b) => b.addEventListener("click", () => show(Number(b.dataset.i))));
op.addEventListener("input", () => { S.opacity = op.value / 100; draw(); });
fit();
if (saved.zoom) { S.zoom = saved.zoom; S.x = saved.x; S.y = saved.y; }
window.addEventListener("resize", draw);
window.gvViewer = {state: () => ({...S}), show: show};
draw();
</script></body></html>"""
