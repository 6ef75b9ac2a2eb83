"""The observation (landing page): what pixel losses do to gradient variance, and what the GV loss gives back.

HR | baseline | L1 model | L1+GV model for a bundled image; zoomed crops of the region where the L1 model lost
the most variance; an amplified L1+GV - L1 difference; a λ control over the sweep checkpoints with the trade-off
chart; variance and gradient maps, histograms and the metric table. Every number comes from gvcore.scoring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import analysis, catalog, figures, loaders, state, widgets

st.title("The observation: pixel losses flatten gradient variance — GV gives it back")

samples = loaders.bundled_images()
left, mid, right = st.columns(3)
image_name = left.selectbox("Bundled image", list(samples), key="obs-image")
protocol = right.radio(
    "Protocol",
    ["standard", "official"],
    horizontal=True,
    key="obs-protocol",
    help="standard: MATLAB-bicubic LR, Y channel, border = scale (BasicSR), models trained on bicubic LR. "
    "official: the GV paper's code (PIL-bilinear LR, RGB PSNR), models trained on bilinear LR.",
)
folder = state.checkpoints_for(protocol)
infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
usable = [i for i in infos if "error" not in i and i.get("arch") and i.get("scale")]
scales = sorted({i["scale"] for i in usable}) or [2, 4]
scale = mid.selectbox("Scale", scales, format_func="x{}".format, key="obs-scale")
if image_name is None:
    st.error("No bundled sample images found (scikit-image's data folder is missing).")
    st.stop()

# --- which pair: a stated rule, every pair selectable ----------------------------------------------------------
results = state.results_dir() / f"eval_{protocol}.csv"
shipped = loaders.eval_table(str(results), loaders.file_key(results)) if results.is_file() else pd.DataFrame()
best, by_arch = catalog.best_l1_arch(shipped, scale)
archs = sorted({i["arch"] for i in usable if i["scale"] == scale})
if best in archs:
    archs.remove(best)
    archs.insert(0, best)
arch = st.selectbox(
    "L1 / L1+GV pair (architecture)",
    archs or ["—"],
    key=f"obs-arch-{protocol}-{scale}",
    format_func=widgets.labels({a: f"{a} (L1 test PSNR {p:.2f} dB)" for a, p in by_arch.items()}),
)
if best is not None:
    ranking = ", ".join(f"{a} {p:.2f} dB" for a, p in by_arch.items())
    st.caption(
        f"Default pair, by rule: the L1/L1+GV pair whose L1 model has the highest mean test-split PSNR at x{scale} "
        f"in the shipped `{results.name}` (mean over images and seeds): {ranking}."
    )
base, gv = catalog.pair_l1_gv(usable, arch, scale) if archs else (None, None)
if not usable:
    st.info(
        f"No checkpoints in `{folder}`. Showing HR and the baseline only; `python -m gvcore reproduce` writes the "
        "L1 and L1+GV models there (or set `GVLAB_ASSETS` to another assets root)."
    )
elif base is None or gv is None:
    st.info(f"No L1 / L1+GV pair for {arch} at x{scale}; showing what exists.")

paths = tuple(p["path"] for p in (base, gv) if p)
bundle = loaders.observation_bundle(samples[image_name], scale, paths, protocol)
images: dict[str, np.ndarray] = bundle["images"]
maps: dict[str, analysis.MapSet] = bundle["maps"]
metrics: pd.DataFrame = bundle["metrics"]
labels: dict[str, str] = bundle["labels"]
baseline = next(m for m in images if m != "HR")
l1_name = labels.get(base["path"]) if base else None
gv_name = labels.get(gv["path"]) if gv else None
ratios = dict(zip(metrics["method"], metrics["var_ratio"]))
kept = ", ".join(f"**{m}** {ratios[m]:.0%}" for m in metrics["method"] if m != "HR")
st.markdown(
    "Networks trained with a pixel loss predict the *average* of the plausible high-resolution images, so "
    "edges are smeared and the **local variance of their gradient maps collapses**. The Gradient Variance loss "
    "(Abrahamyan et al., ICASSP 2022) penalises that gap. Share of HR gradient variance kept (SR/HR variance "
    f"ratio) on *{image_name}* at x{scale}: {kept}."
)

# --- the four images ----------------------------------------------------------------------------------------------
height, width = bundle["size"]
widgets.downsample_note(bundle["display_factor"], (height, width))
for column, (name, png) in zip(st.columns(len(bundle["png"])), bundle["png"].items()):
    column.image(png, caption=name, output_format="PNG", width="stretch")

# --- where the L1 model lost the most, zoomed ----------------------------------------------------------------------
if l1_name and gv_name:
    st.subheader("Where the L1 model lost the most structure")
    tiles = 8  # 64-pixel regions of 8x8 patches
    row, col, deficit = analysis.deficit_region(maps["HR"].variance[0], maps[l1_name].variance[0], tiles)
    size = min(tiles * 8, height, width)
    top, left_px = row * 8, col * 8
    st.caption(
        f"Found by code: the {size}x{size}-pixel region (x = {left_px}, y = {top}) whose summed patch-variance "
        f"deficit HR - L1 is largest ({deficit:.3f}, p = 8, Sobel, gray). Nearest-neighbour zoom."
    )
    region = {n: images[n] for n in ("HR", baseline, l1_name, gv_name)}
    widgets.chart(
        # five panels in one row: titles wrapped short enough for a 1024-px window
        figures.crop_figure(region, (top, left_px, size, size), "HR", height=300, title_width=13),
        "largest-deficit crops",
        key="obs-crops",
    )
    d1, d2 = st.columns([1, 2])
    amp = d1.select_slider("Difference amplification", options=[1, 5, 10, 20, 50], value=10, key="obs-amp")
    difference = analysis.amplified_difference(bundle["outputs"][gv_name], bundle["outputs"][l1_name], amp)
    diff_rgb = np.repeat(difference[..., None], 3, axis=2)
    d1.caption(
        f"**L1+GV - L1, amplified x{amp}** (grey = identical; light = L1+GV brighter, dark = darker), mean over "
        f"RGB on the 8-bit scale. Mean |difference| "
        f"{analysis.mean_abs_difference(bundle['outputs'][gv_name], bundle['outputs'][l1_name]):.2f} levels."
    )
    d2.image(widgets.as_display(diff_rgb)[0], caption=f"(L1+GV - L1) x {amp}", output_format="PNG")

# --- the λ dose-response -------------------------------------------------------------------------------------------
sweep_infos = loaders.checkpoint_infos(str(state.sweep_dir()), loaders.folder_key(state.sweep_dir()))
points = catalog.sweep_points(sweep_infos, scale)
if points:
    st.subheader("How much GV? The λ dose-response")
    lambdas = [float(p["gv_weight"]) for p in points]
    lam = st.select_slider(
        "λ (weight of the GV loss; 0 = L1 alone)",
        options=lambdas,
        value=lambdas[min(2, len(lambdas) - 1)],
        format_func="λ = {:g}".format,
        key=f"obs-lambda-{scale}",
    )
    sweep = loaders.sweep_bundle(samples[image_name], scale, tuple(p["path"] for p in points))
    here = sweep["metrics"].assign(source=f"{image_name} (this image)")
    curves = [here]
    table_path = state.results_dir() / "lambda_sweep.csv"
    if table_path.is_file():
        held = loaders.eval_table_any(str(table_path), loaders.file_key(table_path))
        if "scale" in held:
            held = held[held["scale"] == scale]
        curves.append(held.assign(source="held-out train images (shipped)"))
    c1, c2 = st.columns([1, 1])
    with c1:
        chosen_label = sweep["labels"][lambdas.index(lam)]
        sweep_images = {"HR": images["HR"], f"λ = {lam:g}": analysis.to_uint8(sweep["outputs"][chosen_label])}
        if l1_name:
            t, lp, sz = top, left_px, size
        else:
            t, lp, sz = 0, 0, min(64, height, width)
        widgets.chart(
            figures.crop_figure(sweep_images, (t, lp, sz, sz), "HR", height=260),
            "lambda crop",
            key="obs-lambda-crop",
        )
        chosen_path = points[lambdas.index(lam)]["path"]
        v_map = loaders.maps_for(  # cached: moving the λ slider back and forth computes each map once
            f"sweep|{samples[image_name]}|x{scale}|{chosen_path}|{loaders.file_key(chosen_path)}",
            analysis.GradientSettings(),
            sweep["outputs"][chosen_label],
        ).variance[0]
        region_v = {
            "HR": np.log10(
                np.maximum(maps["HR"].variance[0][t // 8 : (t + sz) // 8, lp // 8 : (lp + sz) // 8], 1e-6)
            ),
            f"λ = {lam:g}": np.log10(
                np.maximum(v_map[t // 8 : (t + sz) // 8, lp // 8 : (lp + sz) // 8], 1e-6)
            ),
        }
        widgets.chart(
            figures.heatmap_grid(
                region_v,
                columns=2,
                colorscale="Viridis",
                symmetric=False,
                title="log10 patch variance (region)",
            ),
            "lambda variance",
            key="obs-lambda-var",
        )
    with c2:
        widgets.chart(
            figures.tradeoff_figure(
                pd.concat(curves, ignore_index=True),
                lam,
                f"λ trade-off, {points[0].get('arch', '')} x{scale}",
            ),
            "lambda tradeoff",
            key="obs-tradeoff",
        )
    row_now = here[(here["lambda"] - lam).abs() < 1e-12].iloc[0]
    st.caption(
        f"At λ = {lam:g} on {image_name}: PSNR {row_now['psnr']:.3f} dB, SR/HR variance ratio "
        f"{row_now['var_ratio']:.3f}, GV distance {row_now['gv_distance']:.4g} (standard protocol; sweep models "
        "are trained on the train split minus the held-out images). The GV distance is two-sided: a ratio above 1 "
        "(more variance than HR) is error too."
    )

# --- maps, histograms, table -----------------------------------------------------------------------------------------
tab_var, tab_gx, tab_gy = st.tabs(
    ["Patch variance (log10)", "Gx gradient", "Gy gradient"], key="obs-tabs", on_change="rerun"
)
if tab_var.open:
    with tab_var:
        log_var = {
            name: np.log10(
                np.maximum(analysis.pool_for_display(m.variance[0], state.HEATMAP_MAX_SIDE)[0], 1e-6)
            )
            for name, m in maps.items()
        }
        widgets.chart(
            figures.with_wrapped_titles(
                figures.heatmap_grid(
                    log_var,
                    columns=4,
                    colorscale="Viridis",
                    symmetric=False,
                    title="log10 patch variance (mean of Gx, Gy), 8x8 patches",
                ),
                14,
            ),
            "variance maps",
            key="obs-var",
        )
for tab, direction in ((tab_gx, "gx"), (tab_gy, "gy")):
    if tab.open:
        with tab:
            pooled, gfactor = {}, 1
            for name, m in maps.items():
                pooled[f"{name} {direction.upper()}"], gfactor = analysis.pool_for_display(
                    getattr(m, direction)[0], state.HEATMAP_MAX_SIDE
                )
            widgets.downsample_note(gfactor, (height, width), "gradient maps")
            widgets.chart(
                figures.with_wrapped_titles(figures.heatmap_grid(pooled, columns=4), 14),
                f"{direction} maps",
                key=f"obs-{direction}",
            )

col_hist, col_bar = st.columns(2)
with col_hist:
    widgets.chart(
        figures.histogram_overlay({n: m.variance for n, m in maps.items()}),
        "variance histograms",
        key="obs-hist",
    )
with col_bar:
    widgets.chart(figures.mean_variance_bars(metrics), "mean variance", key="obs-bars")

st.subheader(f"Metrics on {image_name}, x{scale} ({protocol} protocol)")
widgets.table(metrics.round(4), f"metrics {image_name} x{scale}", key="obs-table")
st.caption(
    "Scored by gvcore.scoring, the path `gvcore eval` uses: outputs rounded to 8 bits (standard) or raw "
    "(official); var_ratio = mean over Gx, Gy of the output's mean patch variance over HR's (docs/ARCHITECTURE.md)."
)
if len(shipped):
    rows = shipped[(shipped["image"].astype(str) == image_name) & (shipped["scale"] == scale)]
    rows = rows[(rows["arch"] == arch) | rows["method"].isin(["HR", baseline])]
    if len(rows):
        st.subheader("From the bundled reproduction (all seeds)")
        widgets.table(rows, f"reproduction {image_name} x{scale}", key="obs-repro")
