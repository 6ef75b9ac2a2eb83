"""Benchmark: the bundled reproduction's tables next to the paper's, and a live evaluation.

The live evaluation scores selected checkpoints over the bundled test split or a server-side folder, with
per-image and mean tables, bar charts and the per-image L1 -> L1+GV gain scatter. Every table downloads as
CSV.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import analysis, loaders, results_view, state, widgets
from dashboard.figures.bars import metric_bars
from dashboard.figures.paired import forest_plot, gain_scatter
from dashboard.safety import UploadError, list_images_under, without_paths
from gvcore import stats as gvstats
from gvcore.scoring import SCORE_COLUMNS

st.title("Benchmark")
MEAN_COLUMNS = [*SCORE_COLUMNS, "lpips"]  # the scored metrics, and LPIPS where it was computed


def show_results(table: pd.DataFrame, prefix: str) -> None:
    """Mean table, bar chart, gain scatter and per-image table of a tidy evaluation table."""
    group = [c for c in ("method", "arch", "loss", "scale", "protocol", "data") if c in table]
    present = [c for c in MEAN_COLUMNS if c in table]
    finite = table.replace([float("inf")], float("nan"))
    means = finite.groupby(group, dropna=False, sort=False)[present].mean().reset_index()
    means.insert(len(group), "images", finite.groupby(group, dropna=False, sort=False).size().values)
    st.markdown("**Mean over images** (HR has no PSNR/SSIM against itself: left empty)")
    widgets.table(means.round(4), f"{prefix} means", key=f"{prefix}-means")
    metric = st.radio("Metric", present, horizontal=True, key=f"{prefix}-metric")
    col_bar, col_gain = st.columns(2)
    shown = finite[finite["method"] != "HR"] if metric in ("psnr", "ssim", "gv_distance") else finite
    color = "scale" if "scale" in shown and shown["scale"].nunique() > 1 else None
    with col_bar:
        widgets.chart(
            metric_bars(shown, metric, color=color), f"{prefix} {metric} bars", key=f"{prefix}-bars"
        )
    with col_gain:
        gains = analysis.gv_gains(finite, metric if metric in ("psnr", "ssim") else "psnr")
        if gains.empty:
            st.info("No L1 / L1+GV pair of the same architecture and scale in this table: no gain to plot.")
        else:
            widgets.chart(
                gain_scatter(gains, metric if metric in ("psnr", "ssim") else "psnr"),
                f"{prefix} gain scatter",
                key=f"{prefix}-gain",
            )
    paired_section(table, prefix)
    with st.expander("Per-image table"):
        widgets.table(table, f"{prefix} per image", key=f"{prefix}-per-image")


def paired_section(table: pd.DataFrame, prefix: str) -> None:
    """L1+GV - L1 with the image as the unit (gvcore.stats.paired_table), when the table holds both losses."""
    losses = set(table["loss"].dropna().astype(str)) if "loss" in table else set()
    if not {"l1", "l1+gv"} <= losses:
        return
    paired = gvstats.paired_table(table, resamples=2000)
    if paired.empty:
        return
    one_seed = bool((paired["n_seeds"] == 1).any())
    st.markdown(
        "**L1+GV - L1, the image as the unit** (each loss's seeds averaged within an image; n = images; 95 % "
        "bootstrap CI over images and seeds; Wilcoxon p on the per-image differences; gvcore.stats)"
        + (
            " -- with one seed per loss a difference cannot be told apart from a seed effect."
            if one_seed
            else ""
        )
    )
    widgets.table(paired.round(5), f"{prefix} paired statistics", key=f"{prefix}-paired")


def report_download(chosen: list[str], usable: dict[str, dict[str, Any]], protocol: str, source: str) -> None:
    """The Structure atlas's HTML report (``gvcore report``) of the chosen checkpoints on the bundled test split."""
    scales = sorted({usable[c]["scale"] for c in chosen})
    if source != "bundled test split" or len(scales) != 1 or not 1 <= len(chosen) <= 8:
        st.caption(
            "The HTML report (`gvcore report`) needs 1 to 8 checkpoints of one scale on the bundled test split."
        )
        return
    inputs = (tuple(str(usable[c]["path"]) for c in chosen), "bundled", scales[0], protocol)
    stamps = tuple(loaders.file_key(p) for p in inputs[0])
    if st.button("Build the HTML report (gvcore report)", key="live-report-build"):
        try:
            loaders.report_html(inputs[0], stamps, *inputs[1:])
        except (ValueError, OSError) as err:
            st.error(f"Cannot write the report — {without_paths(str(err))}")
        else:
            st.session_state["live-report-inputs"] = (inputs, stamps)
    if st.session_state.get("live-report-inputs") == (inputs, stamps):
        st.download_button(
            "Download report (HTML, opens offline)",
            loaders.report_html(inputs[0], stamps, *inputs[1:]),
            file_name=f"report-x{scales[0]}-{protocol}.html",
            mime="text/html",
            on_click="ignore",
            key="live-report-download",
        )


tab_shipped, tab_live, tab_db = st.tabs(
    ["Bundled reproduction vs the paper", "Evaluate checkpoints", "Results database"]
)
with tab_db:
    results_view.results_database_section(show_results)

# --- the shipped reproduction next to the paper's table --------------------------------------------------------
with tab_shipped:
    protocol = st.radio(
        "Protocol",
        ["standard", "official"],
        horizontal=True,
        key="bench-protocol",
        help="standard: Y channel, border = scale (BasicSR). official: the GV paper's code.",
    )
    results = state.results_dir() / f"eval_{protocol}.csv"
    if not results.is_file():
        st.info(
            f"No bundled results (`{results.name}` in the assets folder). The bundled reproduction (`python -m gvcore reproduce`) "
            "writes them; the live evaluation tab works without them."
        )
    else:
        try:
            shipped = loaders.eval_table(str(results), loaders.file_key(results))
        except (ValueError, OSError, pd.errors.ParserError) as err:
            st.error(f"Cannot read {results.name}: {without_paths(str(err))}")
        else:
            st.caption(
                f"`{results.name}` — {len(shipped)} rows, images: {', '.join(map(str, shipped['image'].unique()))}"
            )
            show_results(shipped, "shipped")
        paired_path = state.results_dir() / "paired.csv"
        if paired_path.is_file():
            paired = loaders.eval_table_any(str(paired_path), loaders.file_key(paired_path))
            st.subheader("Does GV change the result? Paired differences with 95 % CIs")
            st.caption(
                "The image is the unit: each loss's seeds are averaged within an image, then Δ = (L1+GV) - L1 "
                "is one number per image (n = images; the rows say images x seeds). From `paired.csv` "
                "(gvcore.stats: two-level bootstrap CI over images and seeds, 10,000 seeded resamples; Wilcoxon p "
                "on the per-image differences, on hover). A CI that crosses the zero line: not distinguishable "
                "from zero. With one seed a difference cannot be told apart from a seed effect."
            )
            metrics = [m for m in gvstats.PAIRED_METRICS if m in set(paired["metric"])]
            paired_metric = st.radio("Paired metric", metrics, horizontal=True, key="paired-metric")
            shown_paired = paired[paired["protocol"] == protocol] if "protocol" in paired else paired
            if "images" in shown_paired and shown_paired["images"].nunique() > 1:
                groups = list(dict.fromkeys(shown_paired["images"]))
                group = st.radio("Test images", groups, horizontal=True, key="paired-images")
                shown_paired = shown_paired[shown_paired["images"] == group]
            widgets.chart(forest_plot(shown_paired, paired_metric), "paired forest plot", key="paired-forest")
            with st.expander("paired.csv"):
                widgets.table(shown_paired, "paired statistics", key="paired-table")
        summary = state.results_dir() / "summary.md"
        if summary.is_file():
            with st.expander("Reproduction summary (summary.md)"):
                st.markdown(summary.read_text())
    st.subheader("The paper's table (PSNR dB / SSIM, official protocol, DIV2K-trained, full-size models)")
    paper = loaders.paper_results()
    if paper.empty:
        st.info("PAPER.md was not found (looked in docs/, the repository root and ../shared/).")
    else:
        wide = paper.pivot_table(index=["set", "scale"], columns=["arch", "loss"], values="psnr", sort=False)
        wide.columns = [f"{a} {loss} PSNR" for a, loss in wide.columns]
        widgets.table(wide.reset_index(), "paper table psnr", key="paper-psnr")
        with st.expander("SSIM and the tidy table"):
            widgets.table(paper, "paper table", key="paper-tidy")
        st.caption(
            "Not directly comparable with the bundled reproduction: the paper trains on DIV2K with "
            "full-size models and scores with its own protocol; the reproduction trains small models on "
            "the bundled images. Compare directions (does GV help?), not absolute numbers."
        )

# --- live evaluation -----------------------------------------------------------------------------------------
with tab_live:
    l1, l2 = st.columns(2)
    live_protocol = l1.radio(
        "Protocol",
        ["standard", "official"],
        horizontal=True,
        key="live-protocol",
        help="Lists the checkpoints trained on this protocol's degradation (a model is only scored on the LR "
        "its training LR was made like).",
    )
    # bundled, your runs (GVLAB_RUNS) and checkpoint folders (GVLAB_CHECKPOINTS), grouped by source
    usable = {c["choice"]: c for c in loaders.model_choices(live_protocol)}
    if not usable:
        st.info(
            f"No checkpoints trained on {live_protocol} LR (bundled, GVLAB_RUNS or GVLAB_CHECKPOINTS); the "
            "evaluation then scores the interpolation baseline only."
        )
    chosen: list[str] = []
    for group, title in (
        ("bundled", "Bundled"),
        ("runs", "Your runs"),
        ("checkpoint folders", "Your folders"),
    ):
        names = [name for name, c in usable.items() if c["group"] == group]
        if names or group == "bundled":
            chosen += l1.multiselect(
                f"{title} checkpoints",
                names,
                default=names[:4] if group == "bundled" else [],
                key=f"live-ckpts-{live_protocol}" + ("" if group == "bundled" else f"-{group}"),
                format_func=widgets.labels({n: f"{n} (x{usable[n]['scale']})" for n in names}),
            )
    from gvcore.datasets import find_named_datasets

    named = {k: v for r in state.data_roots() if r.is_dir() for k, v in find_named_datasets(r).items()}
    sources = ["bundled test split", *(["benchmark set"] if named else []), "server folder"]
    source = l2.radio("Images", sources, key="live-source")
    paths: list[Path] = []
    if source == "bundled test split":
        paths = [Path(p) for p in loaders.bundled_images().values()]
    elif source == "benchmark set":  # the whole set folder: its layout's LR files are used (gvcore.datasets)
        paths = [named[l2.selectbox("Set", list(named), key="live-set")]]
    else:
        roots = [r for r in state.data_roots() if r.is_dir()]
        if not roots:
            st.info(
                "No server-side image folder is configured: set GVLAB_DATA_ROOTS (folders separated by "
                f"'{os.pathsep}') or create a `{state.data_roots()[0].name}` folder in the repository."
            )
        else:
            # roots are named by their folder name only (no server path on the page)
            index = l2.selectbox(
                "Root",
                range(len(roots)),
                format_func=widgets.labels(
                    {
                        i: root.name + (f" ({i + 1})" if [r.name for r in roots].count(root.name) > 1 else "")
                        for i, root in enumerate(roots)
                    }
                ),
                key="live-root",
            )
            root = str(roots[index])
            sub = l2.text_input("Subfolder (inside the root)", "", key="live-sub")
            try:
                paths = list_images_under(Path(root), sub)
            except UploadError as err:
                st.error(f"Cannot browse this folder — {without_paths(str(err))}")
            else:
                st.caption(f"{len(paths)} image(s) found.")
    scales = sorted({usable[c]["scale"] for c in chosen}) or [2]
    st.caption("Scored by `gvcore.evaluation.evaluate` image by image: the same numbers as `gvcore eval`.")
    st.caption(loaders.lpips_note())
    if st.button("Evaluate", type="primary", key="live-run", disabled=not paths):
        from gvcore.evaluation import evaluate

        bar = st.progress(0.0, text="Evaluating…")
        frames, total, done, device = [], len(paths) * len(scales), 0, state.device()
        for scale in scales:
            ckpts = [usable[label]["path"] for label in chosen if usable[label]["scale"] == scale]
            for path in paths:
                try:
                    table = evaluate(ckpts, str(path), scale, live_protocol, device=device, progress=False)  # type: ignore[arg-type]
                    frames.append(table)
                except (ValueError, OSError) as err:
                    st.warning(f"Skipped {path.name}: {without_paths(str(err))}")
                done += 1
                bar.progress(done / total, text=f"Evaluating x{scale}: {path.name} ({done}/{total})")
        bar.empty()
        st.session_state["live-results"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    live = st.session_state.get("live-results")
    if live is not None and not live.empty:
        show_results(live, "live")
    elif live is None:
        st.caption("Choose checkpoints and images, then press Evaluate.")
    report_download(chosen, usable, live_protocol, source)
