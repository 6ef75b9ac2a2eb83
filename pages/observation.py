"""The observation (landing page): how much of HR's gradient variance L1 and L1+GV models keep, measured.

Above the fold: the headline (each output's SR/HR variance ratio on this image), the region where the L1 model lost
the most variance, large and in sync (HR | L1 | L1+GV, a ratio badge each), and the variance-ratio bars. Below:
the whole images, the signed L1+GV - L1 difference, the λ sweep of the same architecture, the maps, histograms
and tables. Everything comes from one :class:`dashboard.observation_view.ObservationView`, read from disk when it
was computed before (shipped or on this machine), so a visit runs no model; every number in it comes from
gvcore.eval.scoring.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import streamlit as st

from dashboard import (
    analysis,
    atlas_figures,
    catalog,
    loaders,
    observation_sections,
    state,
    view_blocks,
    widgets,
)
from dashboard.figures.axes import with_wrapped_titles
from dashboard.figures.bars import mean_variance_bars, variance_ratio_bars
from dashboard.figures.histograms import histogram_overlay
from dashboard.figures.images import crops_html
from dashboard.figures.maps import heatmap_grid
from dashboard.observation_view import ObservationView

#: how the page's controls keep their values: in the URL, under their keys (a link reopens the same view)
BIND: Final = "query-params"


def choose_view(samples: dict[str, str]) -> observation_sections.ViewRequest:
    """Image, scale, protocol and the L1 / L1+GV pair (preselected by :func:`dashboard.catalog.default_arch`)."""
    c_image, c_scale, c_protocol, c_arch = st.columns([2, 1, 2, 3])
    image_name = c_image.selectbox("Bundled image", list(samples), key="obs_image", bind=BIND)
    protocol = c_protocol.radio(
        "Protocol",
        ["standard", "official"],
        horizontal=True,
        key="obs_protocol",
        bind=BIND,
        help="standard: MATLAB-bicubic LR, Y channel, border = scale (BasicSR), models trained on bicubic LR. "
        "official: the GV paper's code (PIL-bilinear LR, RGB PSNR), models trained on bilinear LR.",
    )
    folder = state.checkpoints_for(protocol)
    infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
    usable = [i for i in infos if "error" not in i and i.get("arch") and i.get("scale")]
    scales = sorted({i["scale"] for i in usable}) or [2, 4]
    scale = c_scale.selectbox("Scale", scales, format_func="x{}".format, key="obs_scale", bind=BIND)

    # --- which pair: one stated rule for every page (catalog.default_arch) ------------------------------------
    shipped = loaders.shipped_eval(protocol)
    _, by_arch = catalog.best_l1_arch(shipped, scale)
    archs = sorted({i["arch"] for i in usable if i["scale"] == scale})
    default_arch = catalog.default_arch(usable, shipped, scale)
    if default_arch in archs:
        archs.remove(default_arch)
        archs.insert(0, default_arch)
    arch = c_arch.selectbox(
        "L1 / L1+GV pair (architecture)",
        archs or ["—"],
        key="obs_pair",
        bind=BIND,
        help="L1 test PSNR of each architecture (shipped table, mean over images and seeds): "
        + (", ".join(f"{a} {p:.2f} dB" for a, p in by_arch.items()) or "no table"),
    )
    sweep_infos = loaders.checkpoint_infos(str(state.sweep_dir()), loaders.folder_key(state.sweep_dir()))
    pair, sweep_paths = catalog.landing_models(usable, sweep_infos, str(arch), int(scale), protocol)
    return observation_sections.ViewRequest(
        samples[image_name], int(scale), protocol, pair, sweep_paths, str(arch)
    )


def headline(view: ObservationView, request: observation_sections.ViewRequest) -> None:
    """The headline sentence: how much of HR's gradient variance each output keeps on this image."""
    ratios = dict(zip(view.metrics["method"], view.metrics["var_ratio"], strict=True))
    baseline = next(m for m in view.methods if m != "HR")
    if view.l1 and view.gv:
        st.markdown(
            f"#### On *{view.image}* at x{view.scale}, the L1 model keeps **{ratios[view.l1]:.0%}** of HR's "
            f"gradient variance; L1+GV **{ratios[view.gv]:.0%}** ({baseline} {ratios[baseline]:.0%})."
        )
        return
    st.markdown(
        f"#### On *{view.image}* at x{view.scale}, {baseline} keeps **{ratios[baseline]:.0%}** of HR's gradient "
        "variance."
    )
    folder = state.checkpoints_for(request.protocol)
    st.info(
        f"No L1 / L1+GV pair for {request.arch} at x{request.scale} in the `{folder.name}` checkpoint folder; "
        "`python -m gvcore reproduce` writes them (or set `GVLAB_ASSETS` to another assets root)."
    )


def worst_region(view: ObservationView, request: observation_sections.ViewRequest) -> None:
    """The region where the L1 model lost the most variance, large and in sync, next to the ratio bars."""
    ratios = dict(zip(view.metrics["method"], view.metrics["var_ratio"], strict=True))
    baseline = next(m for m in view.methods if m != "HR")
    # images and HTML only on the first screen: it is drawn without waiting for plotly.js (bench/README.md)
    c_crop, c_bars = st.columns([3, 2])
    if view.region is not None:
        shown = ["HR", *(m for m in (view.l1, view.gv) if m)]
        with c_crop:  # each caption is the badge: the share of HR's gradient variance kept
            st.html(
                crops_html({m: view.crops[m] for m in shown}, {m: f"{m} · {ratios[m]:.0%}" for m in shown})
            )
    with c_bars:
        st.html(variance_ratio_bars(view.metrics))
    if view.region is not None:
        top, left, side = view.region
        link = atlas_figures.compare_link(view.image, view.scale, request.protocol, top, left, side)
        st.caption(
            f"Left: the {side}x{side}-pixel region (x = {left}, y = {top}) where the L1 model lost the most patch "
            f"variance (summed deficit HR - L1 {view.region_deficit:.3f}; p = 8, Sobel, gray), found by code, its "
            f"pixels enlarged without interpolation; [zoom, pan and switch models on it in Compare]({link}). "
            "Badges and bars: SR/HR gradient-variance ratio on the whole image "
            f"(gvcore.eval.scoring). {view_blocks.default_pair_caption()}"
        )
    noise_row = f"{baseline}+noise"
    if noise_row in ratios:
        st.caption(
            f"**{noise_row}** is a control, not a model: {baseline} plus Gaussian noise (sigma 0.04). It keeps "
            f"{ratios[noise_row]:.0%} of HR's gradient variance against {baseline}'s {ratios[baseline]:.0%}: noise "
            "raises the ratio too, so the ratio is not structure on its own. Read it with var_logdev, GMSD and "
            "MS-SSIM in the table below (metrics the GV loss does not optimise)."
        )


def whole_images(view: ObservationView) -> None:
    """The whole images, each with its variance ratio."""
    ratios = dict(zip(view.metrics["method"], view.metrics["var_ratio"], strict=True))
    st.subheader("The whole images")
    widgets.downsample_note(view.display_factor, view.size)
    for column, (name, png) in zip(st.columns(len(view.png)), view.png.items(), strict=True):
        column.image(png, caption=f"{name} · {ratios[name]:.0%}", output_format="PNG", width="stretch")


def published_models() -> None:
    """The observation on published models (the shipped table), when it is there."""
    published = loaders.shipped_published()
    if not (len(published) and "published" in published):
        return
    st.subheader("The observation on published models")
    st.caption(
        "DAT-light (its authors' L1-trained weights, DIV2K, bicubic degradation; `assets/checkpoints/published`), "
        "scored by the reproduction on the bundled test images under the standard protocol, mean over images. "
        "Trained on other data and for far longer than the bundled pairs, so it answers whether the observation "
        "holds for a model people use, not how GV compares. `gvcore zoo fetch realesrgan-x4plus` adds Real-ESRGAN "
        "(GAN-trained, blind degradation) to Compare and Benchmark."
    )
    widgets.table(
        analysis.published_means(published),
        "published models on the bundled test images",
        key="obs-published",
    )


def gradient_tab(request: observation_sections.ViewRequest, direction: str, size: tuple[int, int]) -> None:
    """One direction's gradient maps (large: computed when the tab is opened; models run once, cached)."""
    bundle = loaders.observation_bundle(request.image_path, request.scale, request.pair, request.protocol)
    pooled, gfactor = {}, 1
    for name, m in bundle["maps"].items():
        pooled[f"{name} {direction.upper()}"], gfactor = analysis.pool_for_display(
            getattr(m, direction)[0], state.HEATMAP_MAX_SIDE
        )
    widgets.downsample_note(gfactor, size, "gradient maps")
    widgets.chart(
        with_wrapped_titles(heatmap_grid(pooled, columns=4), 14), f"{direction} maps", key=f"obs-{direction}"
    )


def map_tabs(view: ObservationView, request: observation_sections.ViewRequest) -> None:
    """Patch-variance and gradient maps, as tabs (the open one is in the URL)."""
    tab_var, tab_gx, tab_gy = st.tabs(
        ["Patch variance (log10)", "Gx gradient", "Gy gradient"], key="obs-tabs", on_change="rerun", bind=BIND
    )
    if tab_var.open:
        with tab_var:
            view_blocks.log_variance_maps(view.variance, key="obs-var", title_width=14)
    for tab, direction in ((tab_gx, "gx"), (tab_gy, "gy")):
        if tab.open:
            with tab:
                gradient_tab(request, direction, view.size)


def metric_tables(view: ObservationView, request: observation_sections.ViewRequest) -> None:
    """Histograms and mean variances, the metrics table, and the bundled reproduction's rows of this image."""
    col_hist, col_bar = st.columns(2)
    with col_hist:
        widgets.chart(histogram_overlay(dict(view.variance)), "variance histograms", key="obs-hist")
    with col_bar:
        widgets.chart(mean_variance_bars(view.metrics), "mean variance", key="obs-bars")
    scale, protocol = request.scale, request.protocol
    st.subheader(f"Metrics on {view.image}, x{scale} ({protocol} protocol)")
    widgets.table(view.metrics.round(4), f"metrics {view.image} x{scale}", key="obs-table")
    st.caption(
        "Scored by gvcore.eval.scoring, the path `gvcore eval` uses: outputs rounded to 8 bits (standard) or raw "
        "(official); var_ratio = mean over Gx, Gy of the output's mean patch variance over HR's "
        "(docs/ARCHITECTURE.md)."
    )
    rows = reproduction_rows(loaders.shipped_eval(protocol), view, request.arch)
    if len(rows):
        st.subheader("From the bundled reproduction (all seeds)")
        widgets.table(rows, f"reproduction {view.image} x{scale}", key="obs-repro")


def reproduction_rows(shipped: pd.DataFrame, view: ObservationView, arch: str) -> pd.DataFrame:
    """The shipped table's rows of this image and scale: HR, the baseline, and the pair's architecture."""
    if not len(shipped):
        return shipped
    baseline = next(m for m in view.methods if m != "HR")
    rows = shipped[(shipped["image"].astype(str) == view.image) & (shipped["scale"] == view.scale)]
    return rows[(rows["arch"] == arch) | rows["method"].isin(["HR", baseline])]


def render() -> None:
    """The page: the headline, the worst region and the ratio bars above the fold; then images, λ, maps, tables."""
    st.title("The observation: how much of HR's gradient variance L1 and L1+GV models keep")
    samples = loaders.bundled_images()
    if not samples:
        st.error("No bundled sample images found (scikit-image's data folder is missing).")
        st.stop()
        return
    request = choose_view(samples)
    view = request.view()
    # --- the point, above the fold: headline, the worst region, the ratio bars -------------------------------
    headline(view, request)
    worst_region(view, request)
    widgets.let_the_first_screen_paint()
    # --- the whole images and the difference ----------------------------------------------------------------
    whole_images(view)
    published_models()
    observation_sections.difference_section(request)
    observation_sections.lambda_section(request)
    # --- maps, histograms, table ----------------------------------------------------------------------------
    map_tabs(view, request)
    metric_tables(view, request)


render()
