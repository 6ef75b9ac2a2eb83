"""Compare checkpoints: pick two or more models (bundled or uploaded) and an image, then read their outputs side by
side with synchronised zoom, a before/after slider with exact pixels, paper-style zoom crops, error maps, variance
and variance-deficit maps, histograms and a PSNR/SSIM/GV table."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st
import torch

from dashboard import analysis, catalog, figures, loaders, state, widgets
from dashboard.compare_slider import render_compare_slider
from dashboard.safety import CHECKPOINT_SUFFIXES, UploadError
from gvcore.data import BASELINE_NAMES, prepare_pair, upscale_baseline

st.title("Compare checkpoints")

# --- input mode, protocol, scale -----------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
mode = c2.radio("Input", ["HR (LR made as the protocol says)", "LR only (no reference)"], key="cmp-mode")
has_reference = mode.startswith("HR")
protocol = c3.radio(
    "Protocol",
    ["standard", "official"],
    horizontal=True,
    key="cmp-protocol",
    disabled=not has_reference,
    help="standard: MATLAB-bicubic LR and models trained on it; official: PIL-bilinear LR (the GV code) and "
    "models trained on it. A model is only scored on the degradation it was trained on.",
)
protocol = protocol if has_reference else "standard"
folder = state.checkpoints_for(protocol)
infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
usable = [i for i in infos if "error" not in i and i.get("scale")]
scales = sorted({i["scale"] for i in usable} | {2, 3, 4})
scale = c1.selectbox("Scale", scales, format_func=lambda s: f"x{s}", key="cmp-scale")
baseline_name = BASELINE_NAMES[protocol]

# --- the image -----------------------------------------------------------------------------------------------
chosen = widgets.choose_image("cmp", "Image" if has_reference else "LR image")

# --- the checkpoints -----------------------------------------------------------------------------------------
st.subheader("Checkpoints")
at_scale = {i["label"]: i for i in usable if i["scale"] == scale}
if not usable:
    st.info(
        f"No bundled checkpoints in `{state.checkpoints_dir()}` — upload checkpoints below, or run the bundled "
        "reproduction (`python -m gvcore reproduce`)."
    )
k1, k2 = st.columns(2)
picked = k1.multiselect(
    f"Bundled checkpoints at x{scale}",
    list(at_scale),
    default=catalog.default_pair_labels(usable, scale),
    key=f"cmp-bundled-{scale}",
)
include_bicubic = k1.checkbox(f"Include {baseline_name}", value=True, key="cmp-bicubic")
uploads = k2.file_uploader(
    "Upload checkpoints (.safetensors ours or any spandrel architecture; .pth/.pt)",
    type=[s.lstrip(".") for s in CHECKPOINT_SUFFIXES],
    accept_multiple_files=True,
    key="cmp-uploads",
)
models: dict[str, tuple[str, torch.nn.Module]] = {}  # label -> (cache key, model)
for label in picked:
    info = at_scale[label]
    model, _ = loaders.load_model(info["path"], loaders.file_key(info["path"]))
    models[label] = (f"bundled:{info['path']}:{loaders.file_key(info['path'])}", model)
for upload in uploads or []:
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    try:
        loaded = loaders.uploaded_model(upload.name, digest, scale, data)
    except UploadError as err:
        st.error(f"Cannot use this checkpoint — {err}")
        continue
    models[loaded.label] = (f"upload:{digest}", loaded.model)

method_count = len(models) + int(include_bicubic)
if chosen is None:
    st.stop()
if method_count < 2:
    st.info(f"Pick at least two methods to compare (bundled or uploaded checkpoints, or {baseline_name}).")
    st.stop()

# --- super-resolve -------------------------------------------------------------------------------------------
image = chosen.tensor
hr: torch.Tensor | None
if has_reference:
    if min(image.shape[-2:]) < 2 * scale * 8:
        st.error(f"The image is too small for x{scale} (LR would be under 8x8 pixels).")
        st.stop()
    lr, hr = prepare_pair(image, scale, protocol)  # type: ignore[arg-type]
else:
    hr, lr = None, image
out_pixels = lr.shape[-2] * lr.shape[-1] * scale * scale
if out_pixels > state.MAX_OUTPUT_PIXELS:
    st.error(
        f"The output would be {lr.shape[-1] * scale}x{lr.shape[-2] * scale} pixels, over the limit of "
        f"{state.MAX_OUTPUT_PIXELS:,}; use a smaller image or scale."
    )
    st.stop()
image_key = f"{chosen.key}:x{scale}:{protocol if has_reference else 'lr'}"
outputs = {}
if hr is not None:
    outputs["HR"] = hr
if include_bicubic:
    outputs[baseline_name] = upscale_baseline(lr, scale, protocol)  # type: ignore[arg-type]
progress = st.progress(0.0, text="Super-resolving…")
for index, (label, (model_key, model)) in enumerate(models.items()):
    progress.progress(index / len(models), text=f"Super-resolving with {label} ({index + 1}/{len(models)})…")
    outputs[label] = loaders.sr_with(model_key, image_key, scale, protocol, model, lr)
progress.empty()
methods = [m for m in outputs if m != "HR"]
images = {name: analysis.to_uint8(t) for name, t in outputs.items()}
height, width = next(iter(images.values())).shape[:2]

# --- side by side with synchronised zoom/pan -----------------------------------------------------------------
st.subheader("Side by side (zoom and pan are synchronised)")
shown, factor = {}, 1
for name, img in images.items():
    shown[name], factor = widgets.as_display(img)
widgets.downsample_note(factor, (height, width), "outputs")
widgets.chart(
    figures.image_grid(shown, columns=min(4, len(shown)), height=320), "outputs side by side", key="cmp-grid"
)


# --- before/after slider (a fragment: changing its controls reruns only this section) ----------------------------
@st.fragment
def before_after(images: dict[str, np.ndarray]) -> None:
    st.subheader("Before / after")
    names = list(images)
    s1, s2, s3 = st.columns([2, 2, 1])
    builtin = ("HR", "bicubic", "bilinear")
    models_first = [i for i, n in enumerate(names) if n not in builtin] + [
        i for i, n in enumerate(names) if n in builtin
    ]
    left_name = s1.selectbox("Left", names, index=models_first[0], key="cmp-left")
    right_name = s2.selectbox("Right", names, index=models_first[1], key="cmp-right")
    zoom = s3.select_slider("Zoom", options=[1, 2, 3, 4], value=1, key="cmp-zoom")
    render_compare_slider(images[left_name], images[right_name], left_name, right_name, zoom=zoom)
    st.caption(
        "Exact 8-bit output pixels (lossless PNG, nearest-neighbour zoom); dragging runs in the browser."
    )


before_after(images)

# --- zoom-in crops like a paper figure -----------------------------------------------------------------------
st.subheader("Zoom-in crops")
z1, z2, z3 = st.columns(3)
size = z1.slider(
    "Crop size (pixels)", 16, max(16, min(height, width, 256)), min(64, height, width), key="cmp-crop"
)
top = z2.slider("Top", 0, max(height - size, 0), max(height - size, 0) // 2, key="cmp-top")
left = z3.slider("Left", 0, max(width - size, 0), max(width - size, 0) // 2, key="cmp-left-px")
reference = "HR" if "HR" in images else next(iter(images))
widgets.chart(figures.crop_figure(images, (top, left, size, size), reference), "zoom crops", key="cmp-crops")

# --- error, variance and deficit maps ------------------------------------------------------------------------
maps = {
    name: loaders.maps_for(f"{image_key}|{name}", analysis.GradientSettings(), t)
    for name, t in outputs.items()
}
tab_deficit, tab_variance, tab_histograms, tab_errors = st.tabs(
    ["Variance deficit", "Variance maps", "Histograms", "Error maps"], key="cmp-tabs", on_change="rerun"
)
if tab_deficit.open:
    with tab_deficit:
        if hr is None:
            st.info("The variance deficit needs an HR reference (switch the input to HR).")
        else:
            deficits = {
                name: analysis.pool_for_display(
                    analysis.variance_deficit(maps[name].variance[0], maps["HR"].variance[0]),
                    state.HEATMAP_MAX_SIDE,
                )[0]
                for name in methods
            }
            widgets.chart(
                figures.heatmap_grid(
                    deficits,
                    columns=min(4, len(deficits)),
                    colorscale="RdBu",
                    title="log10(V_output / V_HR): blue = variance lost",
                ),
                "variance deficit",
                key="cmp-deficit",
            )
if tab_variance.open:
    with tab_variance:
        log_var = {
            name: np.log10(
                np.maximum(analysis.pool_for_display(m.variance[0], state.HEATMAP_MAX_SIDE)[0], 1e-6)
            )
            for name, m in maps.items()
        }
        widgets.chart(
            figures.heatmap_grid(
                log_var,
                columns=min(4, len(log_var)),
                colorscale="Viridis",
                symmetric=False,
                title="log10 patch variance (mean of Gx, Gy), 8x8 patches",
            ),
            "variance maps",
            key="cmp-variance",
        )
if tab_histograms.open:
    with tab_histograms:
        widgets.chart(
            figures.histogram_overlay({name: m.variance for name, m in maps.items()}),
            "variance histograms",
            key="cmp-hist",
        )

if tab_errors.open:
    with tab_errors:
        if hr is None:
            st.info("Error maps need an HR reference (switch the input to HR).")
        else:
            errors = {}
            for name in methods:
                errors[name], efactor = analysis.pool_for_display(
                    analysis.error_map(outputs[name], hr), state.HEATMAP_MAX_SIDE
                )
            widgets.downsample_note(efactor, (height, width), "error maps")
            widgets.chart(
                figures.heatmap_grid(
                    errors,
                    columns=min(4, len(errors)),
                    colorscale="Inferno",
                    symmetric=False,
                    title="|output − HR| (8-bit levels)",
                ),
                "error maps",
                key="cmp-errors",
            )

# --- the table -----------------------------------------------------------------------------------------------
outputs_key = f"{image_key}|" + "|".join(f"{n}={models[n][0] if n in models else n}" for n in outputs)
metrics = loaders.metrics_for(outputs_key, scale, protocol, {n: outputs[n] for n in methods}, hr)
if hr is None:
    metrics = metrics.drop(columns=["psnr", "ssim", "gv_distance", "var_ratio"])
    st.caption("LR-only input: PSNR, SSIM and GV distance need an HR reference and are hidden.")
st.subheader(f"Metrics ({protocol} protocol)" if hr is not None else "Gradient variance")
widgets.table(metrics.round(4), "comparison metrics", key="cmp-table")
widgets.chart(figures.mean_variance_bars(metrics), "mean variance per method", key="cmp-bars")
