"""The observation (landing page): HR | bicubic | L1 model | L1+GV model, their gradient maps, patch-variance
maps, variance histograms, mean variance per method and the PSNR/SSIM/GV table, for a bundled image."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import analysis, catalog, figures, loaders, state, widgets

st.title("The observation: pixel losses flatten gradient variance")

infos = loaders.checkpoint_infos(str(state.checkpoints_dir()), loaders.folder_key(state.checkpoints_dir()))
usable = [i for i in infos if "error" not in i and i.get("arch") and i.get("scale")]
samples = loaders.bundled_images()

# --- controls: image, scale, architecture, protocol ---------------------------------------------------------
left, mid, right, last = st.columns(4)
image_name = left.selectbox("Bundled image", list(samples), key="obs-image")
scales = sorted({i["scale"] for i in usable}) or [2, 3, 4]
scale = mid.selectbox(
    "Scale",
    scales,
    index=min(1, len(scales) - 1) if 4 not in scales else scales.index(4),
    format_func=lambda s: f"x{s}",
    key="obs-scale",
)
archs = sorted({i["arch"] for i in usable if i["scale"] == scale})
preferred = next((i for i, a in enumerate(archs) if a.startswith("vdsr")), 0)  # the paper's main model
arch = right.selectbox("Architecture", archs or ["—"], index=preferred, key="obs-arch")
protocol = last.radio(
    "Protocol",
    ["standard", "official"],
    horizontal=True,
    key="obs-protocol",
    help="standard: Y channel, border = scale (BasicSR). official: the GV paper's code.",
)

base, gv = catalog.pair_l1_gv(usable, arch, scale) if archs else (None, None)
if not usable:
    st.info(
        f"No bundled checkpoints found in `{state.checkpoints_dir()}`. Showing HR and bicubic only; the bundled "
        "reproduction (`python -m gvcore reproduce`) writes the L1 and L1+GV models there "
        "(or set `GVLAB_ASSETS` to another assets root)."
    )
elif base is None or gv is None:
    st.info(f"The bundled checkpoints have no L1 / L1+GV pair for {arch} at x{scale}; showing what exists.")

if image_name is None:
    st.error("No bundled sample images found (scikit-image's data folder is missing).")
    st.stop()

bundle = loaders.observation_bundle(
    samples[image_name], scale, base["path"] if base else None, gv["path"] if gv else None, protocol
)
images: dict[str, np.ndarray] = bundle["images"]
maps: dict[str, analysis.MapSet] = bundle["maps"]
metrics = bundle["metrics"]
methods = list(images)

# --- what the reader is looking at (numbers computed above, not typed in) -------------------------------------
ratios = dict(zip(metrics["method"], metrics["var_ratio"]))
model_methods = [m for m in methods if m not in ("HR", "bicubic")]
kept = ", ".join(f"**{m}** {ratios[m]:.0%}" for m in ["bicubic", *model_methods] if m in ratios)
st.markdown(
    "Networks trained with a pixel loss (L1/L2) predict the *average* of all plausible high-resolution images, "
    "so edges are smeared and the **local variance of their gradient maps collapses**. Below, the Sobel "
    "gradients Gx/Gy of each output are cut into 8x8 patches and the variance of every patch is shown on a "
    "log scale: flat, dark patches are structure that was lost. The Gradient Variance loss (Abrahamyan et al., "
    f"ICASSP 2022) penalises that gap. Share of HR gradient variance kept on *{image_name}* at x{scale}: {kept}."
)

# --- the four images (lossless PNG) ---------------------------------------------------------------------------
height, width = bundle["size"]
shown, factor = {}, 1
for name, img in images.items():
    shown[name], factor = widgets.as_display(img)
widgets.downsample_note(factor, (height, width))
for column, (name, img) in zip(st.columns(len(shown)), shown.items()):
    column.image(img, caption=name, output_format="PNG", width="stretch")
st.caption(
    "Lossless PNG. For synchronised zoom, a before/after slider and uploads, open *Compare checkpoints*."
)

# --- variance maps and gradient maps (only the open tab is computed and sent) ---------------------------------
tab_var, tab_gx, tab_gy = st.tabs(
    ["Patch variance (log10)", "Gx gradient", "Gy gradient"], key="obs-tabs", on_change="rerun"
)
if tab_var.open:
    with tab_var:
        log_var = {name: np.log10(np.maximum(m.variance[0], 1e-6)) for name, m in maps.items()}
        widgets.chart(
            figures.heatmap_grid(
                log_var,
                columns=4,
                colorscale="Viridis",
                symmetric=False,
                title="log10 patch variance (mean of Gx, Gy), 8x8 patches",
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
                figures.heatmap_grid(pooled, columns=4), f"{direction} maps", key=f"obs-{direction}"
            )

# --- histograms, bars, table ---------------------------------------------------------------------------------
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
    "Scored like `gvcore eval`: outputs rounded to 8 bits (standard) or clamped (official). gv_distance: the GV "
    "loss (p=8, Sobel, gray) against HR; var_ratio: mean patch variance of the output's gradients over HR's."
)

# --- the bundled reproduction's numbers for the same image ---------------------------------------------------
results = state.results_dir() / f"eval_{protocol}.csv"
if results.is_file():
    table = loaders.eval_table(str(results), loaders.file_key(results))
    rows = table[table["image"].astype(str).str.startswith(image_name)]
    if "scale" in rows:
        rows = rows[rows["scale"] == scale]
    if "arch" in rows and archs:
        rows = rows[(rows["arch"] == arch) | rows["method"].isin(["HR", "bicubic"])]
    if len(rows):
        st.subheader("From the bundled reproduction")
        widgets.table(rows, f"reproduction {image_name} x{scale}", key="obs-repro")
