"""Structure atlas: where, across a data set, checkpoints lose gradient variance and where one recovers some of it.

The bundled test split or a server folder; a gallery of the ranked regions (aligned crops of HR, the baseline and
each checkpoint), a per-image table with links into Compare at that image and region, and the same
self-contained HTML report as ``gvcore report`` to download. Protocol, scale, checkpoints, images, direction,
top-k, deficit range and the open ranking are in the URL (``atl_…``): a link reopens the same atlas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import atlas_figures, atlas_store, catalog, loaders, precomputed, state, view_blocks, widgets
from dashboard.safety import without_paths
from dashboard.view_blocks import URL
from gvcore.eval.atlas import DIRECTIONS, MAX_CHECKPOINTS, MAX_TOP_K, AtlasResult, build_atlas
from gvcore.protocol import Protocol

SOURCES = ["bundled test split", "server folder"]
#: the per-image table's columns, in display order
TABLE_COLUMNS = [
    "compare",
    "image",
    "method",
    "var_ratio",
    "gv_distance",
    "psnr",
    "ssim",
    "worst_x",
    "worst_y",
    "worst_deficit",
]


@dataclass(frozen=True)
class AtlasRequest:
    """What the controls ask for: the checkpoints, the images and the ranking settings."""

    paths: tuple[str, ...]
    data: str
    scale: int
    protocol: str
    settings: tuple[Any, ...]  # (direction, top_k, images or None, deficit range or None)


# --- building (once per machine for the same inputs) ---------------------------------------------------------
def atlas_for(request: AtlasRequest) -> AtlasResult:
    """The atlas of the request, built at most once per machine for the same inputs.

    From memory, else from disk (shipped, or built before on this machine), else built here with a progress bar
    and written to the user cache.
    """
    paths, data, scale, protocol, settings = (
        request.paths,
        request.data,
        request.scale,
        request.protocol,
        request.settings,
    )
    key = atlas_store.atlas_key(paths, data, scale, protocol, settings, state.INFERENCE_TILE)
    known = loaders.DATA_CACHE.get(("atlas", key))
    if known is not None:
        return known
    entry = precomputed.load(atlas_store.KIND, key)
    if entry is not None:
        result = atlas_store.from_entry(*entry)
    else:
        result = build_atlas_now(request)
        precomputed.save(atlas_store.KIND, key, *atlas_store.to_entry(result))
    loaders.DATA_CACHE.put(("atlas", key), result)
    return result


def build_atlas_now(request: AtlasRequest) -> AtlasResult:
    """:func:`gvcore.eval.atlas.build_atlas` with a progress bar."""
    direction, top_k, images, deficit_range = request.settings
    models = {}
    for path in request.paths:
        model, meta = loaders.load_model(path, loaders.file_key(path))
        models[str(meta.get("label") or Path(path).stem)] = model
    bar = st.progress(0.0, text="Building the atlas (once for these inputs; kept on disk)…")

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(done / total, text=f"{name} ({done}/{total})")

    result = build_atlas(
        models,
        request.data,
        request.scale,
        Protocol.parse(request.protocol),
        top_k=top_k,
        direction=direction,
        images=images,
        deficit_range=deficit_range,
        tile=state.INFERENCE_TILE,
        progress=progress,
    )
    bar.empty()
    return result


# --- the controls (every one in the URL) ---------------------------------------------------------------------
def checkpoint_controls(c1: Any, c2: Any) -> tuple[str, int, dict[str, Any], list[str]]:
    """Protocol, scale and the checkpoints at that scale (the landing page's pair preselected).

    Returns:
        ``(protocol, scale, {label: info} at the scale, picked labels)``.
    """
    protocol = view_blocks.protocol_radio(c1, "atl_protocol")
    folder = state.checkpoints_for(protocol)
    infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
    usable = [i for i in infos if "error" not in i and i.get("scale")]
    scales = sorted({i["scale"] for i in usable}) or [2]
    scale = int(c1.selectbox("Scale", scales, format_func="x{}".format, key="atl_scale", bind=URL))
    at_scale = {i["label"]: i for i in usable if i["scale"] == scale}
    picked = c2.multiselect(
        f"Checkpoints at x{scale} (1 to {MAX_CHECKPOINTS}; the first two are the recovery pair A, B)",
        list(at_scale),
        default=catalog.default_pair_labels(usable, scale, loaders.shipped_eval(protocol)),
        max_selections=MAX_CHECKPOINTS,
        key="atl_ckpts",
        bind=URL,
    )
    return protocol, scale, at_scale, list(picked)


def image_controls(container: Any) -> tuple[str, list[str]] | None:
    """The images: the bundled test split or a server folder. ``(data, image names)``; ``None`` when unusable."""
    source = container.radio("Images", SOURCES, horizontal=True, key="atl_source", bind=URL)
    if source != "server folder":
        return "bundled", list(loaders.bundled_images())
    folder = view_blocks.server_folder(container, "atl")
    if folder is None:
        return None
    return folder.path, [p.stem for p in folder.images]


def filter_controls(names: list[str]) -> tuple[tuple[str, ...] | None, tuple[float, float] | None]:
    """Only some images, and a deficit range. ``(images or None, range or None)``."""
    chosen = st.multiselect("Only these images (empty = all)", names, key="atl_images", bind=URL)
    if not st.checkbox("Filter by deficit range", key="atl_use_range", bind=URL):
        return tuple(chosen) or None, None
    low, high = st.slider(
        "Deficit V_HR - V_out (mean over checkpoints)",
        -0.5,
        1.5,
        (0.0, 1.5),
        0.01,
        key="atl_range",
        bind=URL,
    )
    return tuple(chosen) or None, (float(low), float(high))


def controls() -> AtlasRequest | None:
    """Every control of the page; the request they make, or ``None`` (said why) when there is nothing to build."""
    c1, c2, c3 = st.columns(3)
    protocol, scale, at_scale, picked = checkpoint_controls(c1, c2)
    direction = c3.radio(
        "Gradient direction", list(DIRECTIONS), index=2, horizontal=True, key="atl_dir", bind=URL
    )
    top_k = int(c3.number_input("Top-k regions per ranking", 1, MAX_TOP_K, 8, key="atl_topk", bind=URL))
    images = image_controls(c2)
    if images is None:
        return None
    data, names = images
    chosen, deficit_range = filter_controls(names)
    if not picked:
        st.info(f"Pick 1 to {MAX_CHECKPOINTS} checkpoints at x{scale}.")
        return None
    paths = tuple(str(at_scale[label]["path"]) for label in picked)
    return AtlasRequest(paths, data, scale, protocol, (direction, top_k, chosen, deficit_range))


# --- the gallery -----------------------------------------------------------------------------------------------
def region_rows(regions: list[Any]) -> None:
    """Each ranked region: where, its score and deficits, and the aligned crops (HR, baseline, checkpoints)."""
    for rank, region in enumerate(regions, start=1):
        st.markdown(
            f"#{rank} **{region.image}** at x={region.x}, y={region.y} ({region.size} px) — score "
            f"{region.score:.4g}; deficit: " + ", ".join(f"{m} {d:.4g}" for m, d in region.deficits.items())
        )
        st.image(
            [atlas_figures.framed(atlas_figures.enlarge(c, 128)) for c in region.crops.values()],
            caption=list(region.crops),
            width=136,
        )


def gallery(result: AtlasResult) -> None:
    """One tab per ranking (the open one in the URL): its deficit bars and its regions."""
    a, b = result.pair or ("", "")
    rankings = list(result.regions)
    # lazy: only the open tab's chart and crops are built and sent (4 rankings x 8 regions x 4 crops otherwise)
    tabs = st.tabs([name.replace("_", " ") for name in rankings], key="atl_rank", on_change="rerun", bind=URL)
    for tab, name in zip(tabs, rankings, strict=True):
        if not tab.open:
            continue
        with tab:
            regions = result.regions[name]
            st.markdown(f"**{atlas_figures.RANKING_TITLES[name].format(a=a, b=b)}**")
            if not regions:
                st.info("No region in this ranking with these filters.")
                continue
            widgets.chart(
                atlas_figures.region_deficit_figure(regions, result.methods),
                f"atlas {name} deficits",
                key=f"atlas-bars-{name}",
            )
            region_rows(regions)


# --- the per-image table ---------------------------------------------------------------------------------------
def per_image_table(result: AtlasResult, request: AtlasRequest) -> pd.DataFrame:
    """The per-image rows, HR's first, each checkpoint's with a link into Compare at its worst region."""
    table = view_blocks.hr_first(result.table)
    bundled = set(loaders.bundled_images()) if request.data == "bundled" else set()
    table.insert(
        0,
        "compare",
        [
            atlas_figures.compare_link(
                r.image, request.scale, request.protocol, int(r.worst_y), int(r.worst_x), int(r.worst_size)
            )
            if r.image in bundled and r.method != "HR"
            else None
            for r in table.itertuples()
        ],
    )
    return table


def per_image_section(result: AtlasResult, request: AtlasRequest) -> None:
    """The per-image table (empty cells "—") with its CSV, and the variance ratio per image."""
    st.subheader("Per image")
    table = per_image_table(result, request)
    widgets.table(
        table[TABLE_COLUMNS],
        "atlas per-image",
        key="atlas-table-csv",
        links={"compare": "open at worst region"},
    )
    widgets.chart(atlas_figures.image_ratio_figure(table), "variance ratio per image", key="atlas-ratio")


# --- the report ------------------------------------------------------------------------------------------------
def report_section(request: AtlasRequest, key: str) -> None:
    """A button that builds the ``gvcore report`` HTML of the request and a button that downloads it.

    Under the standard protocol, the λ-sweep checkpoints at the scale (if any) can be added for the trade-off
    curve.
    """
    st.subheader("Report")
    st.caption(
        "The same self-contained HTML file as `gvcore report` (these checkpoints, images, direction and top-k): "
        "share it, it opens offline."
    )
    paths, scale, protocol = request.paths, request.scale, request.protocol
    sweep: tuple[str, ...] = ()
    if protocol == "standard":
        infos = loaders.checkpoint_infos(str(state.sweep_dir()), loaders.folder_key(state.sweep_dir()))
        points = tuple(str(i["path"]) for i in catalog.sweep_points(infos, scale))
        if points and st.checkbox(
            f"Include the λ sweep ({len(points)} sweep checkpoints; slower)", key=f"{key}-sweep"
        ):
            sweep = points
    settings = request.settings[:3]  # direction, top-k, images (the report ranks without a deficit range)
    inputs = (
        paths,
        tuple(loaders.file_key(p) for p in paths),
        request.data,
        scale,
        protocol,
        settings,
        sweep,
    )
    if st.button("Build the HTML report", key=f"{key}-build"):
        try:
            loaders.report_html(*inputs)
        except (ValueError, OSError) as err:
            st.error(f"Cannot write the report — {without_paths(str(err))}")
        else:
            st.session_state[f"{key}-inputs"] = inputs
    if st.session_state.get(f"{key}-inputs") == inputs:
        st.download_button(
            "Download report (HTML, opens offline)",
            loaders.report_html(*inputs),
            file_name=f"report-x{scale}-{protocol}.html",
            mime="text/html",
            on_click="ignore",
            key=f"{key}-download",
        )


def render() -> None:
    """The Structure atlas page: controls, then the gallery, the per-image table and the report."""
    st.title("Structure atlas")
    st.caption(
        "Regions of 4x4 patches (32x32 HR pixels) ranked across the data set by the patch-variance deficit "
        "V_HR - V_out (gvcore.eval.atlas, scored by the one scoring path); memory stays bounded by top-k."
    )
    request = controls()
    if request is None:
        return
    try:
        result = atlas_for(request)
    except (ValueError, OSError) as err:
        st.error(f"Cannot build the atlas — {without_paths(str(err))}")
        return
    gallery(result)
    per_image_section(result, request)
    report_section(request, "atlas-report")


render()
