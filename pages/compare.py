"""Compare checkpoints: two or more models' outputs on one image, side by side.

Pick the models (bundled, your own training runs, or uploaded) and an image, then read their outputs side by
side with synchronised zoom, a before/after view with exact pixels (slider, flicker or signed difference;
hovering reads both images' RGB), paper-style zoom crops, error maps, variance and variance-deficit maps,
histograms and a PSNR/SSIM/GV table. An image whose output would be too large is compared on a region of it.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import streamlit as st
import torch

from dashboard import analysis, before_after, catalog, loaders, state, url_state, view_blocks, widgets
from dashboard.figures.axes import with_wrapped_titles
from dashboard.figures.bars import mean_variance_bars
from dashboard.figures.histograms import histogram_overlay
from dashboard.figures.images import crop_grid, image_grid
from dashboard.figures.maps import deficit_grid, heatmap_grid
from dashboard.safety import CHECKPOINT_SUFFIXES, LoadedCheckpoint, UploadError
from gvcore.models import MODELS
from gvcore.protocol import Protocol

#: The smallest region side (LR pixels) the region crop accepts: LR under 8x8 says nothing about variance.
MIN_REGION_SIDE = 8
#: how the page's controls keep their values: in the URL, under their keys (a link reopens the same view)
BIND: Final = "query-params"


def upload_label(file_name: str, loaded: LoadedCheckpoint) -> str:
    """``"mymodel.pth (EDSR)"``: the uploaded file's name and architecture.

    After the checkpoint's own label when it carries one; the loader's temporary file name is never shown.
    """
    arch = str(loaded.metadata.get("arch") or getattr(loaded.model, "arch", "") or "unknown architecture")
    shown_arch = arch.upper() if arch in MODELS else arch
    own = str(loaded.metadata.get("label") or "")
    meaningful = (
        loaded.metadata.get("source") == "gvcore"
        and own
        and not own.startswith("gvlab-upload-")
        and own != Path(file_name).stem
    )
    return f"{own} · {file_name} ({shown_arch})" if meaningful else f"{file_name} ({shown_arch})"


def default_region(lr_width: int, lr_height: int, max_pixels: int) -> tuple[int, int, int, int]:
    """A centred ``(x, y, w, h)`` region of an LR image, of its aspect ratio, with ``w * h <= max_pixels``."""
    if lr_width * lr_height <= max_pixels:
        return 0, 0, lr_width, lr_height
    ratio = math.sqrt(max_pixels / (lr_width * lr_height))
    w = max(MIN_REGION_SIDE, min(lr_width, int(lr_width * ratio)))
    h = max(MIN_REGION_SIDE, min(lr_height, max_pixels // w))
    return (lr_width - w) // 2, (lr_height - h) // 2, w, h


def bounded_slider(container: Any, label: str, low: int, high: int, value: int, key: str) -> int:
    """An int slider bound to the URL, or (``st.slider`` refuses ``min == max``) the only possible value, stated."""
    if high <= low:
        container.caption(f"{label}: {low} (the only possible value for this image)")
        return low
    return int(container.slider(label, low, high, min(max(value, low), high), key=key, bind=BIND))


#: the parameters of a Structure-atlas link (:func:`apply_link`)
LINK_PARAMS = ("image", "scale", "protocol", "top", "left", "size")


def apply_link() -> dict[str, int]:
    """Open at a Structure-atlas link (``?image=&scale=&protocol=&top=&left=&size=``).

    Presets the bundled image, scale and protocol once per link (the link is its own parameters only: the
    page's bound widgets write theirs next to them); returns the zoom crop it names (HR pixels).
    """
    params = st.query_params
    crop = {k: int(params[k]) for k in ("top", "left", "size") if str(params.get(k, "")).isdigit()}
    link = "&".join(f"{k}={params[k]}" for k in LINK_PARAMS if k in params)
    if params.get("image") in loaders.bundled_images() and st.session_state.get("cmp-link") != link:
        st.session_state["cmp-link"] = link
        st.session_state["cmp-source"] = "Bundled sample"
        st.session_state["cmp-sample"] = str(params["image"])
        st.session_state["cmp-url-sample"] = str(params["image"])
        if params.get("protocol") in ("standard", "official"):
            st.session_state["cmp-protocol"] = params["protocol"]
        if str(params.get("scale", "")).isdigit():
            st.session_state["cmp-scale"] = int(params["scale"])
    return crop


def input_controls() -> tuple[bool, str, int]:
    """Input mode, protocol and scale: ``(has_reference, protocol, scale)``."""
    c1, c2, c3 = st.columns(3)
    mode = c2.radio(
        "Input", ["HR (LR made as the protocol says)", "LR only (no reference)"], key="cmp-mode", bind=BIND
    )
    has_reference = mode.startswith("HR")
    protocol = c3.radio(
        "Protocol",
        ["standard", "official"],
        horizontal=True,
        key="cmp-protocol",
        bind=BIND,
        disabled=not has_reference,
        help="standard: MATLAB-bicubic LR and models trained on it; official: PIL-bilinear LR (the GV code) and "
        "models trained on it. A model is only scored on the degradation it was trained on.",
    )
    protocol = protocol if has_reference else "standard"
    scales = sorted(
        {i["scale"] for i in [*usable_checkpoints(protocol), *loaders.model_choices(protocol)]} | {2, 3, 4}
    )
    scale = c1.selectbox("Scale", scales, format_func="x{}".format, key="cmp-scale", bind=BIND)
    return has_reference, protocol, int(scale)


def usable_checkpoints(protocol: str) -> list[catalog.CheckpointInfo]:
    """The bundled checkpoints of ``protocol``'s folder that read (with a scale)."""
    folder = state.checkpoints_for(protocol)
    infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
    return [i for i in infos if "error" not in i and i.get("scale")]


def checkpoint_pickers(protocol: str, scale: int) -> tuple[dict[str, tuple[str, torch.nn.Module]], bool]:
    """The checkpoints to compare (bundled, runs, folders, uploads): ``({label: (cache key, model)}, baseline)``.

    The bundled pair is preselected by the rule every page uses (:func:`dashboard.catalog.default_pair_labels`).
    """
    st.subheader("Checkpoints")
    usable = usable_checkpoints(protocol)
    # bundled, your runs (GVLAB_RUNS) and checkpoint folders (GVLAB_CHECKPOINTS) trained on this protocol's LR
    offered = [c for c in loaders.model_choices(protocol) if c["scale"] == scale]
    at_scale = {c["choice"]: c for c in offered if c["group"] == "bundled"}
    runs = {c["choice"]: Path(c["path"]) for c in offered if c["group"] == "runs"}
    own = {c["choice"]: Path(c["path"]) for c in offered if c["group"] == "checkpoint folders"}
    if not usable and not runs and not own:
        st.info(
            f"No bundled checkpoints in `{state.checkpoints_dir()}` — upload checkpoints below, or run the bundled "
            "reproduction (`python -m gvcore reproduce`)."
        )
    k1, k2 = st.columns(2)
    picked = k1.multiselect(
        f"Bundled checkpoints at x{scale}",
        list(at_scale),
        default=catalog.default_pair_labels(usable, scale, loaders.shipped_eval(protocol)),
        key=f"cmp-bundled-{protocol}-{scale}",
        bind=BIND,
    )
    picked_runs = k1.multiselect(
        f"Your training runs at x{scale} ({protocol} degradation)",
        list(runs),
        key=f"cmp-runs-{protocol}-{scale}",
        bind=BIND,
        help="Run directories (`last.safetensors`, `config.json`, `log.csv`) under "
        + ", ".join(f"`{root}`" for root in state.runs_roots())
        + " (set `GVLAB_RUNS` to look elsewhere) whose config's scale and protocol match.",
    )
    picked_own = k1.multiselect(
        f"Your checkpoint folders at x{scale} ({protocol} degradation)",
        list(own),
        key=f"cmp-folders-{protocol}-{scale}",
        bind=BIND,
        help="`*.safetensors` in "
        + (", ".join(f"`{f}`" for f in state.checkpoint_folders()) or "no folder yet")
        + f" (set `GVLAB_CHECKPOINTS`, folders separated by `{os.pathsep}`), labelled by their metadata.",
    )
    include_bicubic = k1.checkbox(
        f"Include {Protocol.parse(protocol).baseline}", value=True, key="cmp-bicubic", bind=BIND
    )
    k1.caption(view_blocks.default_pair_caption())
    uploads = k2.file_uploader(
        "Upload checkpoints (.safetensors ours or any spandrel architecture; .pth/.pt)",
        type=[s.lstrip(".") for s in CHECKPOINT_SUFFIXES],
        accept_multiple_files=True,
        key="cmp-uploads",
    )
    models = picked_models(
        {label: at_scale[label]["path"] for label in picked},
        {label: runs.get(label) or own[label] for label in [*picked_runs, *picked_own]},
    )
    uploaded_models(uploads or [], scale, models)
    return models, include_bicubic


def picked_models(bundled: dict[str, str], files: dict[str, Path]) -> dict[str, tuple[str, torch.nn.Module]]:
    """The picked bundled checkpoints and run/folder checkpoints, loaded: ``{label: (cache key, model)}``.

    A run or folder checkpoint that does not load is named in an error; the others are still compared.
    """
    models: dict[str, tuple[str, torch.nn.Module]] = {}
    for label, bundled_path in bundled.items():
        model, _ = loaders.load_model(bundled_path, loaders.file_key(bundled_path))
        models[label] = (f"bundled:{bundled_path}:{loaders.file_key(bundled_path)}", model)
    for label, path in files.items():
        try:
            model, _ = loaders.load_model(str(path), loaders.file_key(path))
        except (ValueError, OSError) as err:
            st.error(f"Cannot load {label} — {str(err).replace(str(path), path.name)}")
            continue
        models[label] = (f"run:{path}:{loaders.file_key(path)}", model)
    return models


def uploaded_models(uploads: list[Any], scale: int, models: dict[str, tuple[str, torch.nn.Module]]) -> None:
    """Add the uploaded checkpoints that load to ``models``; say why the others cannot be used."""
    # refused uploads are remembered by content and scale, so a widget click never loads a hostile file again
    refused = state.remember_refusals(st.session_state, "cmp-refused-uploads")
    for upload in uploads:
        data = upload.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if f"{digest}:x{scale}" in refused:
            st.error(f"Cannot use this checkpoint — {refused[f'{digest}:x{scale}']}")
            continue
        try:
            loaded = loaders.uploaded_model(upload.name, digest, scale, data)
        except UploadError as err:
            refused[f"{digest}:x{scale}"] = str(err)
            st.error(f"Cannot use this checkpoint — {err}")
            continue
        label = upload_label(upload.name, loaded)
        if label in models:
            label = f"{label} [{digest[:6]}]"
        models[label] = (f"upload:{digest}", loaded.model)


def compared_region(
    chosen: widgets.ChosenImage, scale: int, has_reference: bool
) -> tuple[int, int, int, int]:
    """The ``(x, y, w, h)`` LR region compared: the whole input, or a region when the output would be too large."""
    image = chosen.tensor
    if has_reference and min(image.shape[-2:]) < 2 * scale * 8:
        st.error(f"The image is too small for x{scale} (LR would be under 8x8 pixels).")
        st.stop()
    lr_height, lr_width = int(image.shape[-2]), int(image.shape[-1])
    if has_reference:
        lr_height, lr_width = lr_height // scale, lr_width // scale
    if lr_width * lr_height * scale * scale <= state.MAX_OUTPUT_PIXELS:
        return 0, 0, lr_width, lr_height
    max_lr_pixels = state.MAX_OUTPUT_PIXELS // (scale * scale)
    st.info(
        f"The whole output would be {lr_width * scale}x{lr_height * scale} pixels, over the limit of "
        f"{state.MAX_OUTPUT_PIXELS:,}: a region of the input is compared instead. Choose it in LR pixels "
        f"(x, y = top-left corner; w x h at most {max_lr_pixels:,} LR pixels); the default is centred."
    )
    dx, dy, dw, dh = default_region(lr_width, lr_height, max_lr_pixels)
    region_key = hashlib.sha256(f"{chosen.key}:{scale}:{lr_width}x{lr_height}".encode()).hexdigest()[:10]
    r1, r2, r3, r4 = st.columns(4)
    w = int(
        r3.number_input(
            "w (LR px)", MIN_REGION_SIDE, lr_width, dw, key=f"cmp-region-w-{region_key}", bind=BIND
        )
    )
    h = int(
        r4.number_input(
            "h (LR px)", MIN_REGION_SIDE, lr_height, dh, key=f"cmp-region-h-{region_key}", bind=BIND
        )
    )
    x = int(
        r1.number_input(
            "x (LR px)", 0, lr_width - MIN_REGION_SIDE, dx, key=f"cmp-region-x-{region_key}", bind=BIND
        )
    )
    y = int(
        r2.number_input(
            "y (LR px)", 0, lr_height - MIN_REGION_SIDE, dy, key=f"cmp-region-y-{region_key}", bind=BIND
        )
    )
    if w * h > max_lr_pixels:
        h = max(MIN_REGION_SIDE, max_lr_pixels // w)
        w = min(w, max_lr_pixels // h)
        st.warning(f"{w}x{h} LR pixels is the largest region of that width under the limit; using it.")
    x, y = min(x, lr_width - w), min(y, lr_height - h)
    st.caption(
        f"Showing the region x = {x}…{x + w - 1}, y = {y}…{y + h - 1} of the {lr_width}x{lr_height} LR input "
        f"({w}x{h} LR pixels, {w * scale}x{h * scale} output pixels)."
    )
    return x, y, w, h


def super_resolve_all(
    chosen: widgets.ChosenImage,
    region: tuple[int, int, int, int],
    settings: tuple[int, str, bool],
    models: dict[str, tuple[str, torch.nn.Module]],
    include_bicubic: bool,
) -> tuple[dict[str, torch.Tensor], str]:
    """HR (with a reference), the baseline and every model's output on ``region``: ``(outputs, image key)``.

    ``settings`` is ``(scale, protocol, has_reference)``.
    """
    scale, protocol, has_reference = settings
    image = chosen.tensor
    x, y, w, h = region
    whole = region == (0, 0, *compared_whole(image, scale, has_reference))
    region_tag = "" if whole else f":region{x},{y},{w},{h}"
    image_key = f"{chosen.key}:x{scale}:{protocol if has_reference else 'lr'}{region_tag}"
    hr: torch.Tensor | None
    if has_reference:
        hr_region = image[..., y * scale : (y + h) * scale, x * scale : (x + w) * scale]
        lr, hr = loaders.degraded_pair(image_key, scale, protocol, image if whole else hr_region)
    else:
        hr, lr = None, image[..., y : y + h, x : x + w]
    outputs = {}
    if hr is not None:
        outputs["HR"] = hr
    if include_bicubic:
        outputs[Protocol.parse(protocol).baseline] = loaders.baseline_output(image_key, scale, protocol, lr)
    progress = st.progress(0.0, text="Super-resolving…")
    for index, (label, (model_key, model)) in enumerate(models.items()):
        progress.progress(
            index / len(models), text=f"Super-resolving with {label} ({index + 1}/{len(models)})…"
        )
        outputs[label] = loaders.sr_with(model_key, image_key, scale, protocol, model, lr)
    progress.empty()
    return outputs, image_key


def compared_whole(image: torch.Tensor, scale: int, has_reference: bool) -> tuple[int, int]:
    """The whole LR input's ``(width, height)``."""
    height, width = int(image.shape[-2]), int(image.shape[-1])
    return (width // scale, height // scale) if has_reference else (width, height)


def side_by_side(images: dict[str, np.ndarray]) -> None:
    """Every output side by side with synchronised zoom and pan."""
    height, width = next(iter(images.values())).shape[:2]
    st.subheader("Side by side (zoom and pan are synchronised)")
    shown, factor = {}, 1
    for name, img in images.items():
        shown[name], factor = widgets.as_display(img)
    widgets.downsample_note(factor, (height, width), "outputs")
    widgets.chart(
        with_wrapped_titles(image_grid(shown, columns=min(4, len(shown)), height=320)),
        "outputs side by side",
        key="cmp-grid",
    )


def zoom_crops(images: dict[str, np.ndarray], link_crop: dict[str, int]) -> None:
    """Paper-style zoom crops: the reference with the box, then each output's crop (size and place in the URL)."""
    height, width = next(iter(images.values())).shape[:2]
    st.subheader("Zoom-in crops")
    z1, z2, z3 = st.columns(3)
    short_side = min(height, width)
    size = bounded_slider(
        z1,
        "Crop size (pixels)",
        min(16, short_side),
        min(short_side, 256),
        link_crop.get("size", 64),
        "cmp-crop",
    )
    top = bounded_slider(z2, "Top", 0, height - size, link_crop.get("top", (height - size) // 2), "cmp-top")
    left = bounded_slider(
        z3, "Left", 0, width - size, link_crop.get("left", (width - size) // 2), "cmp-left-px"
    )
    reference = "HR" if "HR" in images else next(iter(images))
    widgets.chart(
        crop_grid(images, (top, left, size, size), reference, columns=4), "zoom crops", key="cmp-crops"
    )


def deficit_tab(maps: dict[str, analysis.MapSet], methods: list[str]) -> None:
    """Each output's variance deficit against HR."""
    if "HR" not in maps:
        st.info("The variance deficit needs an HR reference (switch the input to HR).")
        return
    deficits = {
        name: analysis.pool_for_display(
            analysis.variance_deficit(maps[name].variance[0], maps["HR"].variance[0]),
            state.HEATMAP_MAX_SIDE,
        )[0]
        for name in methods
    }
    widgets.chart(
        deficit_grid(deficits, columns=min(4, len(deficits))), "variance deficit", key="cmp-deficit"
    )


def error_tab(outputs: dict[str, torch.Tensor], methods: list[str], size: tuple[int, int]) -> None:
    """Each output's absolute error against HR."""
    hr = outputs.get("HR")
    if hr is None:
        st.info("Error maps need an HR reference (switch the input to HR).")
        return
    errors, efactor = {}, 1
    for name in methods:
        errors[name], efactor = analysis.pool_for_display(
            analysis.error_map(outputs[name], hr), state.HEATMAP_MAX_SIDE
        )
    widgets.downsample_note(efactor, size, "error maps")
    widgets.chart(
        with_wrapped_titles(
            heatmap_grid(
                errors,
                columns=min(4, len(errors)),
                colorscale="Inferno",
                symmetric=False,
                title="|output - HR| (8-bit levels)",
            )
        ),
        "error maps",
        key="cmp-errors",
    )


def map_tabs(outputs: dict[str, torch.Tensor], image_key: str, size: tuple[int, int]) -> None:
    """Variance deficit, variance maps, histograms and error maps, as tabs (the open one is in the URL)."""
    methods = [m for m in outputs if m != "HR"]
    maps = {
        name: loaders.maps_for(f"{image_key}|{name}", analysis.GradientSettings(), t)
        for name, t in outputs.items()
    }
    tab_deficit, tab_variance, tab_histograms, tab_errors = st.tabs(
        ["Variance deficit", "Variance maps", "Histograms", "Error maps"],
        key="cmp-tabs",
        on_change="rerun",
        bind=BIND,
    )
    if tab_deficit.open:
        with tab_deficit:
            deficit_tab(maps, methods)
    if tab_variance.open:
        with tab_variance:
            view_blocks.log_variance_maps(
                {name: m.variance[0] for name, m in maps.items()}, key="cmp-variance"
            )
    if tab_histograms.open:
        with tab_histograms:
            widgets.chart(
                histogram_overlay({name: m.variance for name, m in maps.items()}),
                "variance histograms",
                key="cmp-hist",
            )
    if tab_errors.open:
        with tab_errors:
            error_tab(outputs, methods, size)


def metrics_table(outputs_key: str, outputs: dict[str, torch.Tensor], scale: int, protocol: str) -> None:
    """PSNR, SSIM, GV and the variances of every output (without a reference: the variances only)."""
    hr = outputs.get("HR")
    methods = [m for m in outputs if m != "HR"]
    metrics = loaders.metrics_for(outputs_key, scale, protocol, {n: outputs[n] for n in methods}, hr)
    if hr is None:
        metrics = metrics.drop(
            columns=["psnr", "ssim", "ms_ssim", "gmsd", "gv_distance", "var_ratio", "var_logdev"]
        )
        st.caption(
            "LR-only input: the metrics against HR (PSNR, SSIM, MS-SSIM, GMSD, GV distance) are hidden."
        )
    st.subheader(f"Metrics ({protocol} protocol)" if hr is not None else "Gradient variance")
    widgets.table(metrics.round(4), "comparison metrics", key="cmp-table")
    widgets.chart(mean_variance_bars(metrics), "mean variance per method", key="cmp-bars")


def render() -> None:
    """The page: inputs, image and checkpoints, then outputs side by side, before/after, crops, maps, metrics.

    Everything large is a local here, freed when the run ends (the before/after fragment reads its images from
    the data cache by key).
    """
    st.title("Compare checkpoints")
    link_crop = apply_link()
    has_reference, protocol, scale = input_controls()
    chosen = url_state.chosen_image("cmp", "Image" if has_reference else "LR image")
    models, include_bicubic = checkpoint_pickers(protocol, scale)
    if chosen is None:
        st.stop()
        return
    if len(models) + int(include_bicubic) < 2:
        st.info(
            "Pick at least two methods to compare (bundled, run or uploaded checkpoints, or "
            f"{Protocol.parse(protocol).baseline})."
        )
        st.stop()
        return
    region = compared_region(chosen, scale, has_reference)
    outputs, image_key = super_resolve_all(
        chosen, region, (scale, protocol, has_reference), models, include_bicubic
    )
    outputs_key = f"{image_key}|" + "|".join(f"{n}={models[n][0] if n in models else n}" for n in outputs)
    images = before_after.images_for(outputs_key, outputs)  # 8-bit outputs, cached: the fragment reads them
    side_by_side(images)
    # a fragment: changing its controls reruns only this section
    before_after.before_after(before_after.images_key(outputs_key))
    zoom_crops(images, link_crop)
    map_tabs(outputs, image_key, images[next(iter(images))].shape[:2])
    metrics_table(outputs_key, outputs, scale, protocol)


render()
