"""Structure atlas: where, across a data set, checkpoints lose gradient variance and where one recovers some of it.

The bundled test split or a server folder; a gallery of the ranked regions (aligned crops of HR, the baseline and
each checkpoint), a per-image table with links into Compare at that image and region, and the same
self-contained HTML report as ``gvcore report`` to download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import atlas_figures, atlas_store, catalog, loaders, precomputed, state, widgets
from dashboard.safety import UploadError, list_images_under, without_paths
from gvcore.eval.atlas import DIRECTIONS, MAX_CHECKPOINTS, MAX_TOP_K, AtlasResult, build_atlas


def atlas_for(
    paths: tuple[str, ...], data: str, scale: int, protocol: str, settings: tuple[Any, ...]
) -> AtlasResult:
    """The atlas of ``paths`` on ``data``, built at most once per machine for the same inputs.

    From memory, else from disk (shipped, or built before on this machine), else built here with a progress bar
    and written to the user cache.
    """
    key = atlas_store.atlas_key(paths, data, scale, protocol, settings, state.INFERENCE_TILE)
    known = loaders.DATA_CACHE.get(("atlas", key))
    if known is not None:
        return known
    entry = precomputed.load(atlas_store.KIND, key)
    if entry is not None:
        result = atlas_store.from_entry(*entry)
    else:
        result = build_atlas_now(paths, data, scale, protocol, settings)
        precomputed.save(atlas_store.KIND, key, *atlas_store.to_entry(result))
    loaders.DATA_CACHE.put(("atlas", key), result)
    return result


def build_atlas_now(
    paths: tuple[str, ...], data: str, scale: int, protocol: str, settings: tuple[Any, ...]
) -> AtlasResult:
    """:func:`gvcore.eval.atlas.build_atlas` with a progress bar."""
    direction, top_k, images, deficit_range = settings
    models = {}
    for path in paths:
        model, meta = loaders.load_model(path, loaders.file_key(path))
        models[str(meta.get("label") or Path(path).stem)] = model
    bar = st.progress(0.0, text="Building the atlas (once for these inputs; kept on disk)…")

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(done / total, text=f"{name} ({done}/{total})")

    result = build_atlas(
        models,
        data,
        scale,
        protocol,  # type: ignore[arg-type]
        top_k=top_k,
        direction=direction,
        images=images,
        deficit_range=deficit_range,
        tile=state.INFERENCE_TILE,
        progress=progress,
    )
    bar.empty()
    return result


def report_section(
    paths: tuple[str, ...], data: str, scale: int, protocol: str, settings: tuple[Any, ...], key: str
) -> None:
    """A button that builds the ``gvcore report`` HTML of ``paths`` on ``data`` and a button that downloads it.

    Under the standard protocol, the λ-sweep checkpoints at ``scale`` (if any) can be added for the trade-off curve.
    """
    sweep: tuple[str, ...] = ()
    if protocol == "standard":
        infos = loaders.checkpoint_infos(str(state.sweep_dir()), loaders.folder_key(state.sweep_dir()))
        points = tuple(str(i["path"]) for i in catalog.sweep_points(infos, scale))
        if points and st.checkbox(
            f"Include the λ sweep ({len(points)} sweep checkpoints; slower)", key=f"{key}-sweep"
        ):
            sweep = points
    inputs = (paths, tuple(loaders.file_key(p) for p in paths), data, scale, protocol, settings, sweep)
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


st.title("Structure atlas")
st.caption(
    "Regions of 4x4 patches (32x32 HR pixels) ranked across the data set by the patch-variance deficit "
    "V_HR - V_out (gvcore.eval.atlas, scored by the one scoring path); memory stays bounded by top-k."
)

c1, c2, c3 = st.columns(3)
protocol = c1.radio("Protocol", ["standard", "official"], horizontal=True, key="atlas-protocol")
folder = state.checkpoints_for(protocol)
infos = loaders.checkpoint_infos(str(folder), loaders.folder_key(folder))
usable = [i for i in infos if "error" not in i and i.get("scale")]
scales = sorted({i["scale"] for i in usable}) or [2]
scale = c1.selectbox("Scale", scales, format_func="x{}".format, key="atlas-scale")
at_scale = {i["label"]: i for i in usable if i["scale"] == scale}

picked = c2.multiselect(
    f"Checkpoints at x{scale} (1 to {MAX_CHECKPOINTS}; the first two are the recovery pair A, B)",
    list(at_scale),
    default=catalog.default_pair_labels(usable, scale, loaders.shipped_eval(protocol)),
    max_selections=MAX_CHECKPOINTS,
    key=f"atlas-ckpts-{protocol}-{scale}",
)
direction = c3.radio("Gradient direction", list(DIRECTIONS), index=2, horizontal=True, key="atlas-direction")
top_k = int(c3.number_input("Top-k regions per ranking", 1, MAX_TOP_K, 8, key="atlas-topk"))

source = c2.radio("Images", ["bundled test split", "server folder"], horizontal=True, key="atlas-source")
data = "bundled"
names = list(loaders.bundled_images())
if source == "server folder":
    roots = [r for r in state.data_roots() if r.is_dir()]
    if not roots:
        st.info("No server-side image folder is configured (GVLAB_DATA_ROOTS).")
        st.stop()
    root = c2.selectbox("Root", [str(r) for r in roots], key="atlas-root")
    sub = c2.text_input("Subfolder (inside the root)", "", key="atlas-sub")
    try:
        paths = list_images_under(Path(root), sub)
    except UploadError as err:
        st.error(f"Cannot browse this folder — {err}")
        st.stop()
    data = str(Path(root) / sub)
    names = [p.stem for p in paths]
chosen_images = st.multiselect("Only these images (empty = all)", names, key="atlas-images")
use_range = st.checkbox("Filter by deficit range", key="atlas-use-range")
deficit_range = None
if use_range:
    low, high = st.slider(
        "Deficit V_HR - V_out (mean over checkpoints)", -0.5, 1.5, (0.0, 1.5), 0.01, key="atlas-range"
    )
    deficit_range = (float(low), float(high))

if not picked:
    st.info(f"Pick 1 to {MAX_CHECKPOINTS} checkpoints at x{scale}.")
    st.stop()
ckpt_paths = tuple(str(at_scale[label]["path"]) for label in picked)
settings = (direction, top_k, tuple(chosen_images) or None, deficit_range)
try:
    result = atlas_for(ckpt_paths, data, int(scale), protocol, settings)
except (ValueError, OSError) as err:
    st.error(f"Cannot build the atlas — {without_paths(str(err))}")
    st.stop()

# --- gallery ---------------------------------------------------------------------------------------------------
a, b = result.pair or ("", "")
rankings = list(result.regions)
tabs = st.tabs([name.replace("_", " ") for name in rankings])
for tab, name in zip(tabs, rankings, strict=True):
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
        for rank, region in enumerate(regions, start=1):
            st.markdown(
                f"#{rank} **{region.image}** at x={region.x}, y={region.y} ({region.size} px) — score "
                f"{region.score:.4g}; deficit: "
                + ", ".join(f"{m} {d:.4g}" for m, d in region.deficits.items())
            )
            st.image(
                [atlas_figures.framed(atlas_figures.enlarge(c, 128)) for c in region.crops.values()],
                caption=list(region.crops),
                width=136,
            )

# --- per-image table with links into Compare -------------------------------------------------------------------
st.subheader("Per image")
table = result.table[result.table["method"] != "HR"].copy()
bundled = set(loaders.bundled_images()) if data == "bundled" else set()
table.insert(
    0,
    "compare",
    [
        atlas_figures.compare_link(
            r.image, int(scale), protocol, int(r.worst_y), int(r.worst_x), int(r.worst_size)
        )
        if r.image in bundled
        else None
        for r in table.itertuples()
    ],
)
shown = table[
    [
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
]
st.dataframe(
    shown,
    hide_index=True,
    column_config={"compare": st.column_config.LinkColumn("Compare", display_text="open at worst region")},
)
widgets.chart(atlas_figures.image_ratio_figure(table), "variance ratio per image", key="atlas-ratio")
st.download_button(
    "Download per-image table (CSV)",
    pd.DataFrame(result.table).to_csv(index=False).encode(),
    file_name="atlas-per-image.csv",
    mime="text/csv",
    on_click="ignore",
    key="atlas-table-csv",
)

# --- the report ------------------------------------------------------------------------------------------------
st.subheader("Report")
st.caption(
    "The same self-contained HTML file as `gvcore report` (these checkpoints, images, direction and top-k): "
    "share it, it opens offline."
)
report_section(ckpt_paths, data, int(scale), protocol, (direction, top_k, settings[2]), "atlas-report")
