"""Variance explorer: an image's gradients and patch variances, and another image's deficit.

Pick or upload an image, choose how gradients and patch variances are computed (operator, border padding,
patch size, stride, channels, variance estimator), and read the image next to its Gx, Gy, magnitude and
variance maps, histograms and statistics; add a second image (an SR output or a degraded copy) to see the
per-patch variance deficit and the GV loss; download the maps (file names say what they were made from).
Sizes are written width x height throughout.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Final, cast

import numpy as np
import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

from dashboard import admission, analysis, downloads, loaders, state, url_state, widgets
from dashboard.figures.histograms import histogram_overlay
from dashboard.figures.images import image_grid
from dashboard.figures.maps import deficit_overlay, heatmap_grid, variance_heatmap
from dashboard.safety import IMAGE_SUFFIXES, UploadError
from gvcore.eval.scoring import gv_distance

RANGE_KEY = "vx-range"
RANGE_BOUNDS_KEY = "vx-range-bounds"
HISTOGRAM_KEY = "vx-hist-select"
#: how the page's controls keep their values: in the URL, under their keys (a link reopens the same view)
BIND: Final = "query-params"


# --- patch variances: a fragment, so patch settings rerun only this part -------------------------------------
@st.fragment
def variance_section(
    chosen: widgets.ChosenImage,
    channel: int,
    gradient: analysis.GradientSettings,
    names: tuple[str, tuple[str, ...]],
) -> None:
    """Patch settings, the variance maps with their highlight, the second image, histograms, statistics, downloads.

    A fragment: changing a patch setting reruns this section only, and the image and gradient maps above (the
    largest figures of the page) are not sent to the browser again. Its arguments hold no arrays (Streamlit
    keeps them in the session until the next full run): the gradient maps come from the data cache, computed
    again if it dropped them.
    """
    placeholder = st.empty()
    with admission.large_image_slot(chosen.pixels, waiting_note(placeholder)):  # a no-op inside a full run
        placeholder.empty()
        variance_body(chosen, channel, gradient, names)


def variance_body(
    chosen: widgets.ChosenImage,
    channel: int,
    gradient: analysis.GradientSettings,
    names: tuple[str, tuple[str, ...]],
) -> None:
    """The variance section's content (:func:`variance_section`, holding the large-image slot)."""
    gradients = loaders.gradients_for(
        chosen.key, gradient.operator, gradient.padding, gradient.gray, chosen.load
    )
    height, width = gradients.gx.shape[-2:]
    patch_size, stride, unbiased, log_colour = patch_settings()
    if min(height, width) < patch_size:
        st.error(
            f"The image ({width}x{height}) is smaller than one {patch_size}x{patch_size} patch; pick a smaller "
            "patch size or a larger image."
        )
        return
    patches = ((height - patch_size) // stride + 1) * ((width - patch_size) // stride + 1)
    if patches > state.MAX_PATCHES:
        st.error(
            f"Patch size {patch_size} with stride {stride} gives {patches:,} patches on this {width}x{height} "
            f"image, over the limit of {state.MAX_PATCHES:,}: choose a larger stride or a smaller image."
        )
        return
    settings = analysis.GradientSettings(
        patch_size=patch_size,
        stride=None if stride == patch_size else stride,
        operator=gradient.operator,
        gray=gradient.gray,
        unbiased=unbiased,
        padding=gradient.padding,
    )
    maps = analysis.maps_from(gradients, loaders.variances_for(chosen.key, settings, gradients))
    stem, details = names  # downloads are named: image stem, patch (and stride), operator, padding (channel)
    provenance = " ".join(
        [stem, f"p{patch_size}", *([f"s{stride}"] if stride != patch_size else []), *details]
    )

    st.caption(
        f"Variance maps: {maps.vx.shape[2]} x {maps.vx.shape[1]} patches of {patch_size}x{patch_size} pixels, "
        f"stride {stride}, from a {width}x{height} image ({settings.operator}, {settings.padding} padding, "
        f"{'gray' if settings.gray else 'per channel'}, {'unbiased' if unbiased else 'biased'}; sizes are "
        "width x height)."
    )
    chosen_range = variance_maps_with_highlight(maps, channel, patch_size, stride, log_colour, provenance)
    second_image(chosen, (int(height), int(width)), maps, settings, channel, chosen_range, provenance)


def patch_settings() -> tuple[int, int, bool, bool]:
    """The patch settings: patch size, stride, unbiased estimator, log colour scale."""
    st.subheader("Patch variance")
    c1, c2, c3 = st.columns(3)
    patch_size = c1.select_slider("Patch size", options=[4, 8, 16, 32], value=8, key="vx-patch", bind=BIND)
    overlapping = c2.toggle(
        "Overlapping patches",
        value=False,
        key="vx-overlap",
        bind=BIND,
        help="Off: non-overlapping tiles (the paper). On: choose the stride.",
    )
    stride = (
        c2.select_slider(
            "Stride",
            options=[s for s in (1, 2, 4, 8, 16) if s < patch_size] or [1],
            value=max(1, patch_size // 2),
            key="vx-stride",
            bind=BIND,
        )
        if overlapping
        else patch_size
    )
    unbiased = c3.radio(
        "Variance", ["unbiased (p²-1, paper)", "biased (p²)"], horizontal=True, key="vx-unbiased", bind=BIND
    ).startswith("un")
    log_colour = c3.toggle("Log colour scale", value=True, key="vx-log", bind=BIND)
    return patch_size, stride, unbiased, log_colour


def highlight_range(vx: np.ndarray, vy: np.ndarray) -> tuple[float, float]:
    """The slider of the log10-variance range to highlight; its bounds follow the maps' values.

    It starts on the flattest tenth of the patches (from the lowest log10 variance to the 10th percentile).

    The slider is the one source of the range: a box dragged on the histogram is copied into it (see
    state.take_histogram_box), and the highlight is computed from the same per-patch log10 variances.
    """
    log_all = np.log10(np.maximum(np.concatenate([vx.ravel(), vy.ravel()]), 1e-6))
    low = round(math.floor(float(log_all.min()) * 10) / 10, 1)
    high = round(math.ceil(float(log_all.max()) * 10) / 10 + 0.1, 1)
    st.session_state[RANGE_BOUNDS_KEY] = (low, high)
    # first visit: the flattest tenth of the patches (where blur shows first), never an empty range
    flattest = round(math.ceil(float(np.quantile(log_all, 0.1)) * 10) / 10, 1)
    default = (low, max(flattest, round(low + 0.1, 1)))
    start, end = (round(float(v), 1) for v in st.session_state.get(RANGE_KEY, default))
    start, end = min(max(start, low), high), min(max(end, low), high)
    st.session_state[RANGE_KEY] = (start, max(start, end))
    return cast(
        "tuple[float, float]",
        st.slider(  # no value: the range in session state (set above) is the value
            "Highlight patches with log10 variance in",
            low,
            high,
            step=0.1,
            key=RANGE_KEY,
            bind=BIND,
            help="Or drag a box on the histogram below: the slider takes its range.",
        ),
    )


def variance_maps_with_highlight(
    maps: analysis.MapSet, channel: int, patch_size: int, stride: int, log_colour: bool, provenance: str
) -> tuple[float, float]:
    """The Gx and Gy variance maps, with the patches in the highlighted range outlined; returns the range."""
    vx, vy = maps.vx[channel], maps.vy[channel]
    chosen_range = highlight_range(vx, vy)
    highlight_on = chosen_range[1] > chosen_range[0]

    def shown_mask(values: np.ndarray) -> np.ndarray | None:
        """The highlight over a displayed map: a displayed cell is marked when any of its patches is in range."""
        if not highlight_on:
            return None
        mask = analysis.log_range_mask(values, chosen_range).astype(np.float32)
        return analysis.pool_for_display(mask, state.HEATMAP_MAX_SIDE)[0] > 0

    shown_vx, vfactor = analysis.pool_for_display(vx, state.HEATMAP_MAX_SIDE)
    shown_vy, _ = analysis.pool_for_display(vy, state.HEATMAP_MAX_SIDE)
    if vfactor > 1:
        st.caption(
            f":information_source: The variance maps have {vx.shape[1]}x{vx.shape[0]} patches; shown averaged "
            f"over {vfactor}x{vfactor} patch blocks for display (highlighted: blocks with any patch in range)."
        )
    for column, full_map, shown_map, name in zip(
        st.columns(2), (vx, vy), (shown_vx, shown_vy), ("Gx", "Gy"), strict=True
    ):
        with column:
            widgets.chart(
                variance_heatmap(
                    shown_map,
                    f"Variance of {name}",
                    patch_size,
                    stride,
                    log=log_colour,
                    highlight=shown_mask(full_map),
                    display_factor=vfactor,
                ),
                f"variance {name.lower()} {provenance}",
                key=f"vx-var-{name.lower()}",
            )
    if highlight_on:
        count = int(
            analysis.log_range_mask(vx, chosen_range).sum() + analysis.log_range_mask(vy, chosen_range).sum()
        )
        st.caption(
            f"{count} patches highlighted (log10 variance in [{chosen_range[0]:.1f}, {chosen_range[1]:.1f}])."
        )
    return chosen_range


def second_image_choice(
    chosen: widgets.ChosenImage, size: tuple[int, int]
) -> tuple[torch.Tensor, str] | None:
    """The second image (a degraded copy or an uploaded SR output of the same size) and its name, or ``None``.

    ``size`` is the first image's ``(height, width)``; the first image itself is loaded only to degrade it.
    """
    height, width = size
    st.subheader("Second image: variance deficit")
    second_mode = st.radio(
        "Compare with",
        ["nothing", "a degraded copy", "an uploaded SR output"],
        horizontal=True,
        key="vx-second",
        bind=BIND,
    )
    if second_mode == "a degraded copy":
        d1, d2 = st.columns(2)
        kind = d1.selectbox("Degradation", list(analysis.DEGRADATIONS), key="vx-degrade", bind=BIND)
        defaults = {
            "bicubic down/up": (2.0, 1.0, 8.0),
            "gaussian blur": (1.5, 0.1, 8.0),
            "jpeg": (20.0, 1.0, 95.0),
            "gaussian noise": (10.0, 0.0, 64.0),
        }
        value, lo, hi = defaults[kind]
        amount = d2.slider(analysis.DEGRADATIONS[kind], lo, hi, value, key=f"vx-amount-{kind}", bind=BIND)
        return analysis.degrade(chosen.tensor, kind, amount), f"{kind} {amount:g}"
    if second_mode != "an uploaded SR output":
        return None
    # keyed by the first image: a new first image (another sample, another upload, another source) starts with an
    # empty uploader, so an SR output of the previous image is never scored against this one
    first_token = hashlib.sha256(chosen.key.encode()).hexdigest()[:12]
    upload = st.file_uploader(
        f"SR output of {chosen.name} (same size: {width}x{height})",
        type=[s.lstrip(".") for s in IMAGE_SUFFIXES],
        key=f"vx-second-upload-{first_token}",
    )
    if upload is None:
        return None
    try:
        data = upload.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        sr = loaders.decoded_upload(upload.name, digest, state.max_upload_pixels(), data)
        if tuple(sr.shape[-2:]) != (height, width):
            raise UploadError(
                f"{upload.name}: the image is {sr.shape[-1]}x{sr.shape[-2]}, but the reference is "
                f"{width}x{height}; they must be the same size"
            )
    except UploadError as err:
        st.error(f"Cannot use this image — {err}")
        return None
    return sr, upload.name


def deficit_view(
    chosen: widgets.ChosenImage,
    maps: analysis.MapSet,
    second: tuple[torch.Tensor, str],
    settings: analysis.GradientSettings,
    channel: int,
    provenance: str,
) -> analysis.MapSet:
    """The GV loss and the per-patch variance deficit of the second image against the first; its maps."""
    image = chosen.tensor
    height, width = image.shape[-2:]
    other, other_name = second
    other_key = f"{chosen.key}|{other_name}|{hashlib.sha256(other.numpy().tobytes()).hexdigest()[:12]}"
    other_maps = loaders.maps_for(other_key, settings, other)
    deficit = analysis.variance_deficit(other_maps.variance[channel], maps.variance[channel])
    gv_value = gv_distance(other, image, **settings.loss_kwargs())
    m1, m2, m3 = st.columns(3)
    m1.metric("GV loss (second vs first)", f"{gv_value:.4g}")
    m2.metric("Mean log10 variance ratio", f"{float(deficit.mean()):+.3f}")
    m3.metric("Patches that lost variance", f"{float((deficit < 0).mean()):.0%}")
    base_img, dfactor = widgets.as_display(analysis.gray_uint8(analysis.to_uint8(image)))
    widgets.downsample_note(dfactor, (height, width), "image under the deficit map")
    # the browser gets at most HEATMAP_MAX_SIDE² cells: blocks of `pool` x `pool` patches, averaged, drawn where
    # the block's patches lie (a block of patches is a patch of side patch_size + (pool - 1) * stride)
    stride = settings.stride or settings.patch_size
    shown_deficit, pool = analysis.pool_for_display(deficit, state.HEATMAP_MAX_SIDE)
    if pool > 1:
        st.caption(
            f":information_source: The deficit map is shown averaged over {pool}x{pool} patch blocks for display."
        )
    widgets.chart(
        deficit_overlay(
            base_img,
            shown_deficit,
            settings.patch_size + (pool - 1) * stride,
            stride * pool,
            display_factor=dfactor,
            title=f"Variance deficit: log10(V[{other_name}] / V[image]): blue = lost, red = gained",
        ),
        f"variance deficit {other_name} {provenance}",
        key="vx-deficit",
    )
    return other_maps


def second_image(
    chosen: widgets.ChosenImage,
    size: tuple[int, int],
    maps: analysis.MapSet,
    settings: analysis.GradientSettings,
    channel: int,
    chosen_range: tuple[float, float],
    provenance: str,
) -> None:
    """The optional second image's deficit, then the histograms, statistics and downloads of every map."""
    vx, vy = maps.vx[channel], maps.vy[channel]
    hist_samples = {"Gx": vx, "Gy": vy}
    second = second_image_choice(chosen, size)
    if second is not None:
        other_maps = deficit_view(chosen, maps, second, settings, channel, provenance)
        name = second[1]
        hist_samples |= {f"{name} Gx": other_maps.vx[channel], f"{name} Gy": other_maps.vy[channel]}
    highlight_on = chosen_range[1] > chosen_range[0]
    widgets.chart(
        histogram_overlay(hist_samples, highlight=chosen_range if highlight_on else None),
        f"variance histograms {provenance}",
        key=HISTOGRAM_KEY,
        # a callback defined in this script would keep this run's globals (maps, images) alive after the run
        on_select=functools.partial(state.take_histogram_box, HISTOGRAM_KEY, RANGE_KEY, RANGE_BOUNDS_KEY),
    )
    st.subheader("Summary statistics")
    widgets.table(
        analysis.variance_summary(hist_samples).round(6), f"variance statistics {provenance}", key="vx-stats"
    )
    map_downloads(maps, channel, provenance)


def map_downloads(maps: analysis.MapSet, channel: int, provenance: str) -> None:
    """One map as NPY, CSV or PNG, named after what it was made from; refused over the download cap."""
    st.subheader("Download the maps")
    d1, d2 = st.columns(2)
    which = d1.selectbox("Map", ["variance Gx", "variance Gy", "Gx", "Gy", "|G|"], key="vx-dl-map")
    fmt = d2.radio("Format", ["NPY", "CSV", "PNG"], horizontal=True, key="vx-dl-format")
    arrays = {
        "variance Gx": maps.vx[channel],
        "variance Gy": maps.vy[channel],
        "Gx": maps.gx[channel],
        "Gy": maps.gy[channel],
        "|G|": maps.magnitude[channel],
    }
    bytes_per_value = {"NPY": 4, "CSV": 14, "PNG": 1}[fmt]  # float32, a printed float, an 8-bit pixel
    estimate = arrays[which].size * bytes_per_value
    if estimate > state.MAX_DOWNLOAD_BYTES:
        st.info(
            f"{which} as {fmt} would be about {estimate / 2**20:.0f} MB, over the "
            f"{state.MAX_DOWNLOAD_BYTES // 2**20} MB a page download may carry: choose NPY or PNG, a larger "
            "stride, or compute it with `gvcore.variance_maps` in Python."
        )
        return
    payload, file_name, mime = downloads.encode_map(
        arrays[which], f"{provenance} {which}", fmt, log=which.startswith("variance")
    )
    st.download_button(
        f"Download {which} ({fmt}) as {file_name}",
        payload,
        file_name=file_name,
        mime=mime,
        key="vx-dl",
        on_click="ignore",
    )


def gradient_settings() -> analysis.GradientSettings:
    """The gradient controls: operator, border padding, gray or per channel."""
    c1, c2, c3 = st.columns(3)
    operator = c1.selectbox("Gradient operator", ["sobel", "scharr", "central"], key="vx-operator", bind=BIND)
    padding = c2.selectbox(
        "Border padding",
        ["zeros", "replicate", "reflect"],
        key="vx-padding",
        bind=BIND,
        help="What the 3x3 gradient kernel sees one pixel past the border: zeros (the paper, like "
        "conv2d(padding=1); borders get strong gradients), the edge pixel repeated, or the image mirrored.",
    )
    gray = (
        c3.radio("Channels", ["gray (paper)", "per channel (RGB)"], key="vx-gray", bind=BIND)
        == "gray (paper)"
    )
    return analysis.GradientSettings(operator=operator, gray=gray, padding=padding)


def image_and_gradient_maps(
    chosen: widgets.ChosenImage, settings: analysis.GradientSettings
) -> tuple[int, tuple[str, tuple[str, ...]]]:
    """The image and its Gx, Gy and magnitude maps (pooled for display); returns the channel shown and the names.

    The image and the maps are locals here, released before the variance section runs.
    """
    image = chosen.tensor
    height, width = image.shape[-2:]
    # cached per image and gradient settings: a patch-size change (a fragment) does not recompute or resend them
    gradients = loaders.gradients_for(chosen.key, settings.operator, settings.padding, settings.gray, image)
    channels = gradients.gx.shape[0]
    channel = 0
    if channels > 1:
        channel = ["R", "G", "B"].index(
            st.radio("Channel shown", ["R", "G", "B"], horizontal=True, key="vx-ch", bind=BIND)
        )
    # what every download is named after: image, operator, padding (and channel); the variance maps add the patch
    stem = Path(chosen.name).stem
    details = (settings.operator, settings.padding, *([["R", "G", "B"][channel]] if channels > 1 else []))
    source_name = " ".join([stem, *details])

    pooled = {}
    for name, values in (
        ("Gx", gradients.gx[channel]),
        ("Gy", gradients.gy[channel]),
        ("|G|", gradients.magnitude[channel]),
    ):
        pooled[name], factor = analysis.pool_for_display(values, state.HEATMAP_MAX_SIDE)
    widgets.downsample_note(factor, (height, width), "gradient maps")
    col_img, col_g, col_m = st.columns([1, 2, 1])
    with col_img:
        shown_image, ifactor = widgets.as_display(analysis.to_uint8(image))
        scaled = f", shown at 1/{ifactor}" if ifactor > 1 else ""
        widgets.chart(
            image_grid({f"{chosen.name} ({width}x{height}{scaled})": shown_image}, columns=1, height=320),
            f"image {source_name}",
            key="vx-image",
        )
    with col_g:
        widgets.chart(
            heatmap_grid({k: pooled[k] for k in ("Gx", "Gy")}, columns=3, title="Gradient maps"),
            f"gradient maps {source_name}",
            key="vx-gradients",
        )
    with col_m:
        widgets.chart(
            heatmap_grid(
                {"|G|": pooled["|G|"]},
                columns=1,
                colorscale="Greys",
                symmetric=False,
                title="Gradient magnitude",
            ),
            f"gradient magnitude {source_name}",
            key="vx-magnitude",
        )
    return channel, (stem, details)


def render() -> None:
    """The page: image and gradient settings, the image with its gradient maps, then the variance section.

    Everything large is a local of a function, freed when the run ends: module globals would live as long as
    the session keeps the fragment, which refers to them through its function's globals.
    """
    st.title("Variance explorer")
    st.caption(
        "How much local structure does an image's gradient field carry? Patch variance of Sobel-type "
        "gradients, as in the Gradient Variance loss."
    )
    col_image, col_settings = st.columns([2, 3])
    with col_settings:
        settings = gradient_settings()
    # a large upload's analysis waits for its turn before it is decoded, then holds it to the end of the run
    with contextlib.ExitStack() as slot:
        with col_image:
            placeholder = st.empty()
            note = waiting_note(placeholder)
            chosen = url_state.chosen_image(
                "vx",
                "Image",
                admit=lambda pixels: slot.enter_context(admission.large_image_slot(pixels, note)),
            )
            placeholder.empty()
        if chosen is None:
            patch_settings()  # the controls stay in place while there is no image to analyse
            st.stop()
            return
        channel, names = image_and_gradient_maps(chosen, settings)
        variance_section(chosen, channel, settings, names)


def waiting_note(placeholder: DeltaGenerator) -> Callable[[float], None]:
    """What a run shows while another large image is analysed (:func:`dashboard.admission.large_image_slot`)."""

    def show(seconds: float) -> None:
        placeholder.info(
            f"Another large image is being analysed; this one starts when it is done (waiting {seconds:.0f} s)…"
        )

    return show


render()
