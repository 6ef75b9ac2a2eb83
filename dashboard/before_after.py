"""Compare's before/after section: a Streamlit fragment that reads the outputs from the data cache by key.

The fragment takes a key, not the images: Streamlit keeps a fragment's arguments (and, through its function,
the globals of the module that defines it) in the session until the next full run, and keeps disconnected
sessions for a while, so images passed along would be memory that no cache bounds. That is also why the
fragment lives here and not in the page script, whose globals hold the page's arrays.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import streamlit as st
import torch

from dashboard import analysis, loaders
from dashboard.compare_slider import render_compare_slider
from dashboard.viewer import deficit_overlay, render_viewer

__all__ = ["VIEWS", "before_after", "images_for", "images_key"]

#: Before/after views and their names.
VIEWS = {
    "slider": "Slider",
    "viewer": "All outputs (wheel zoom, keys 1-9)",
    "flicker": "Flicker",
    "difference": "Signed difference (L - R)",
}


def images_key(outputs_key: str) -> tuple[str, str]:
    """The data-cache key of the 8-bit outputs identified by ``outputs_key``."""
    return ("before-after images", outputs_key)


def images_for(outputs_key: str, outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The 8-bit outputs (name -> ``(H, W, 3)`` uint8) of ``outputs``, identified by ``outputs_key``.

    Kept in the data cache under :func:`images_key` for the fragment (computed once, not on every run).
    """
    return loaders.DATA_CACHE.get_or_compute(
        images_key(outputs_key), lambda: {name: analysis.to_uint8(t) for name, t in outputs.items()}
    )


@st.fragment
def before_after(key: Hashable) -> None:
    """The before/after section: two of the outputs under ``key`` as a slider, flicker or signed difference.

    When the cache no longer holds them (evicted or expired), the section says so and offers a full rerun,
    which computes them again.
    """
    st.subheader("Before / after")
    images: dict[str, np.ndarray] | None = loaders.DATA_CACHE.get(key)
    if images is None:
        st.info("These outputs have left the server's cache (other work needed the memory).")
        if st.button("Compute them again", key="cmp-recompute"):
            st.rerun(scope="app")
        return
    names = list(images)
    view = st.radio(
        "View",
        list(VIEWS),
        format_func=VIEWS.__getitem__,
        horizontal=True,
        key="cmp-view",
        bind="query-params",
    )
    if view == "viewer":
        _all_outputs(images)
        return
    s1, s2, s3 = st.columns([2, 2, 1])
    builtin = ("HR", "bicubic", "bilinear")
    models_first = [i for i, n in enumerate(names) if n not in builtin] + [
        i for i, n in enumerate(names) if n in builtin
    ]
    left_name = s1.selectbox("Left", names, index=models_first[0], key="cmp-left", bind="query-params")
    right_name = s2.selectbox("Right", names, index=models_first[1], key="cmp-right", bind="query-params")
    zoom = s3.select_slider("Zoom", options=[1, 2, 3, 4], value=1, key="cmp-zoom", bind="query-params")
    flicker_ms, amplify = 700, analysis.DEFAULT_DIFFERENCE_FACTOR
    if view == "flicker":
        flicker_ms = st.select_slider(
            "Switch every (ms; 0 = only on click)",
            [0, 250, 500, 700, 1000, 2000],
            value=700,
            key="cmp-flicker",
            bind="query-params",
        )
    elif view == "difference":
        amplify = st.select_slider(
            "Amplify left - right by",
            analysis.DIFFERENCE_FACTORS,
            value=analysis.DEFAULT_DIFFERENCE_FACTOR,
            key="cmp-amplify",
            bind="query-params",
        )
    render_compare_slider(
        images[left_name],
        images[right_name],
        left_name,
        right_name,
        zoom=zoom,
        mode=view,  # type: ignore[arg-type]
        flicker_ms=flicker_ms,
        difference_factor=amplify,
        state_key="cmp",
    )
    explained = {
        "slider": "dragging runs in the browser; the handle keeps its place when the zoom changes.",
        "flicker": "the two images alternate (click the image to switch by hand).",
        "difference": analysis.DIFFERENCE_CONVENTION.format(a=left_name, b=right_name, factor=amplify),
    }
    st.caption(
        "Exact 8-bit output pixels (lossless PNG, nearest-neighbour zoom); hover for x, y and both images' "
        f"RGB; {explained[view]}"
    )


def _all_outputs(images: dict[str, np.ndarray]) -> None:
    """Every output in one shared view (:mod:`dashboard.viewer`), with HR's deficit map as an overlay."""
    names = list(images)[:9]
    overlays = (
        {n: deficit_overlay(images[n], images["HR"]) for n in names if n != "HR"} if "HR" in images else {}
    )
    height = int(min(560, max(240, next(iter(images.values())).shape[0])))
    render_viewer({n: images[n] for n in names}, overlays, height=height)
    more = (
        f" Only the first 9 of {len(images)} outputs are in the viewer (keys 1-9)." if len(images) > 9 else ""
    )
    st.caption(
        "Keys 1-"
        f"{len(names)} switch the output in place (zoom and pan are shared), the wheel zooms about the cursor, a "
        "drag pans, 0 fits to the width; hover for every output's RGB. The overlay slider shows the shown "
        "output's variance-deficit map against HR (log10 V_out / V_HR per 8x8 patch; blue = variance lost, "
        "red = variance added, white = as HR)." + more
    )
