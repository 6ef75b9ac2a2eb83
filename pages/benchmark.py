"""Benchmark: the bundled reproduction's tables next to the paper's, and a live evaluation.

The live evaluation scores selected checkpoints over the bundled test split or a server-side folder, with
per-image and mean tables, bar charts and the per-image L1 -> L1+GV gain scatter. Every table downloads as
CSV. The tab, protocol, checkpoints, images and metric are in the URL (``bm_…``): a link reopens the same view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import analysis, loaders, results_view, state, view_blocks, widgets
from dashboard.figures.bars import metric_bars
from dashboard.figures.paired import forest_plot, gain_scatter
from dashboard.safety import without_paths
from dashboard.view_blocks import URL
from gvcore.eval import stats as gvstats
from gvcore.eval.scoring import SCORE_COLUMNS

MEAN_COLUMNS = [*SCORE_COLUMNS, "lpips"]  # the scored metrics, and LPIPS where it was computed
TABS = ["Bundled reproduction vs the paper", "Evaluate checkpoints", "Results database"]
#: the live tab's checkpoint groups: (group, title, URL key)
GROUPS = (
    ("bundled", "Bundled", "bm_ckpts"),
    ("runs", "Your runs", "bm_runs"),
    ("checkpoint folders", "Your folders", "bm_folders"),
)
SOURCES = ("bundled test split", "benchmark set", "server folder")


# --- the results of an evaluation table (shipped, live or from the database) -------------------------------
def means_table(table: pd.DataFrame, present: list[str], prefix: str) -> None:
    """Mean of each metric per method (and architecture, loss, scale…), HR's row first."""
    group = [c for c in ("method", "arch", "loss", "scale", "protocol", "data") if c in table]
    finite = table.replace([float("inf")], float("nan"))
    means = finite.groupby(group, dropna=False, sort=False)[present].mean().reset_index()
    means.insert(len(group), "images", finite.groupby(group, dropna=False, sort=False).size().values)
    st.markdown("**Mean over images** (HR has no PSNR/SSIM against itself: left empty)")
    widgets.table(view_blocks.hr_first(means).round(4), f"{prefix} means", key=f"{prefix}-means")


def bars_to_show(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of the metric's bar chart: HR's too, wherever HR has a value (e.g. var_ratio 1, gv_distance 0).

    Example:
        >>> t = pd.DataFrame({"method": ["HR", "a"], "psnr": [None, 30.0], "var_ratio": [1.0, 0.8]})
        >>> bars_to_show(t, "psnr")["method"].tolist(), bars_to_show(t, "var_ratio")["method"].tolist()
        (['a'], ['HR', 'a'])
    """
    finite = table.replace([float("inf")], float("nan"))
    is_hr = finite["method"].astype(str) == "HR"
    return finite if finite.loc[is_hr, metric].notna().any() else finite[~is_hr]


def metric_charts(table: pd.DataFrame, metric: str, prefix: str) -> None:
    """The metric's bars per method (HR's where it has a value) next to the per-image L1 -> L1+GV gains."""
    finite = table.replace([float("inf")], float("nan"))
    shown = view_blocks.hr_first(bars_to_show(finite, metric))
    color = "scale" if "scale" in shown and shown["scale"].nunique() > 1 else None
    col_bar, col_gain = st.columns(2)
    with col_bar:
        widgets.chart(
            metric_bars(shown, metric, color=color), f"{prefix} {metric} bars", key=f"{prefix}-bars"
        )
    gain_metric = metric if metric in ("psnr", "ssim") else "psnr"
    gains = analysis.gv_gains(finite, gain_metric)
    with col_gain:
        if gains.empty:
            st.info("No L1 / L1+GV pair of the same architecture and scale in this table: no gain to plot.")
        else:
            widgets.chart(
                view_blocks.titled_legend(gain_scatter(gains, gain_metric), "L1 / L1+GV pair"),
                f"{prefix} gain scatter",
                key=f"{prefix}-gain",
            )


def show_results(table: pd.DataFrame, prefix: str) -> None:
    """Mean table, bar chart, gain scatter and per-image table of a tidy evaluation table."""
    present = [c for c in MEAN_COLUMNS if c in table]
    means_table(table, present, prefix)
    metric = st.radio("Metric", present, horizontal=True, key=f"bm_{prefix}_metric", bind=URL)
    metric_charts(table, str(metric), prefix)
    paired_section(table, prefix)
    with widgets.details("Per-image table", key=f"{prefix}-per-image-open") as opened:
        if opened:
            widgets.table(view_blocks.hr_first(table), f"{prefix} per image", key=f"{prefix}-per-image")


@st.cache_data(show_spinner=False, max_entries=4, ttl=state.CACHE_TTL_S)
def paired_statistics(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`gvcore.eval.stats.paired_table` (2,000 seeded resamples), once per table: seconds, not at every rerun."""
    return gvstats.paired_table(table, resamples=2000)


def paired_section(table: pd.DataFrame, prefix: str) -> None:
    """L1+GV - L1 with the image as the unit (gvcore.eval.stats.paired_table), when the table holds both losses."""
    losses = set(table["loss"].dropna().astype(str)) if "loss" in table else set()
    if not {"l1", "l1+gv"} <= losses:
        return
    paired = paired_statistics(table)
    if paired.empty:
        return
    one_seed = bool((paired["n_seeds"] == 1).any())
    st.markdown(
        "**L1+GV - L1, the image as the unit** (each loss's seeds averaged within an image; n = images; 95 % "
        "bootstrap CI over images and seeds; Wilcoxon p on the per-image differences; gvcore.eval.stats)"
        + (
            " -- with one seed per loss a difference cannot be told apart from a seed effect."
            if one_seed
            else ""
        )
    )
    widgets.table(paired.round(5), f"{prefix} paired statistics", key=f"{prefix}-paired")


# --- the shipped reproduction next to the paper's table ------------------------------------------------------
def shipped_results(protocol: str) -> None:
    """The bundled reproduction's ``eval_<protocol>.csv``: means, bars, gains and per-image rows."""
    results = state.results_dir() / f"eval_{protocol}.csv"
    if not results.is_file():
        st.info(
            f"No bundled results (`{results.name}` in the assets folder). The bundled reproduction (`python -m gvcore reproduce`) "
            "writes them; the live evaluation tab works without them."
        )
        return
    try:
        shipped = loaders.eval_table(str(results), loaders.file_key(results))
    except (ValueError, OSError, pd.errors.ParserError) as err:
        st.error(f"Cannot read {results.name}: {without_paths(str(err))}")
        return
    st.caption(
        f"`{results.name}` — {len(shipped)} rows, images: {', '.join(map(str, shipped['image'].unique()))}"
    )
    show_results(shipped, "shipped")


def paired_forest(protocol: str) -> None:
    """``paired.csv``: (L1+GV) - L1 per metric with 95 % CIs, as a forest plot and a table."""
    paired_path = state.results_dir() / "paired.csv"
    if not paired_path.is_file():
        return
    paired = loaders.eval_table_any(str(paired_path), loaders.file_key(paired_path))
    st.subheader("Does GV change the result? Paired differences with 95 % CIs")
    st.caption(
        "The image is the unit: each loss's seeds are averaged within an image, then Δ = (L1+GV) - L1 "
        "is one number per image (n = images; the rows say images x seeds). From `paired.csv` "
        "(gvcore.eval.stats: two-level bootstrap CI over images and seeds, 10,000 seeded resamples; Wilcoxon p "
        "on the per-image differences, on hover). A CI that crosses the zero line: not distinguishable "
        "from zero. With one seed a difference cannot be told apart from a seed effect."
    )
    metrics = [m for m in gvstats.PAIRED_METRICS if m in set(paired["metric"])]
    paired_metric = st.radio("Paired metric", metrics, horizontal=True, key="bm_paired_metric", bind=URL)
    shown = paired[paired["protocol"] == protocol] if "protocol" in paired else paired
    if "images" in shown and shown["images"].nunique() > 1:
        groups = list(dict.fromkeys(shown["images"]))
        group = st.radio("Test images", groups, horizontal=True, key="bm_paired_images", bind=URL)
        shown = shown[shown["images"] == group]
    widgets.chart(forest_plot(shown, str(paired_metric)), "paired forest plot", key="paired-forest")
    with widgets.details("paired.csv", key="paired-table-open") as opened:
        if opened:
            widgets.table(shown, "paired statistics", key="paired-table")


def summary_section() -> None:
    """The reproduction's ``summary.md``, folded."""
    summary = state.results_dir() / "summary.md"
    if summary.is_file():
        with widgets.details("Reproduction summary (summary.md)", key="summary-open") as opened:
            if opened:
                st.markdown(summary.read_text())


def paper_section() -> None:
    """The GV paper's table (``PAPER.md``), PSNR wide and the tidy table."""
    st.subheader("The paper's table (PSNR dB / SSIM, official protocol, DIV2K-trained, full-size models)")
    paper = loaders.paper_results()
    if paper.empty:
        st.info("PAPER.md was not found (looked in docs/, the repository root and ../shared/).")
        return
    wide = paper.pivot_table(index=["set", "scale"], columns=["arch", "loss"], values="psnr", sort=False)
    wide.columns = [f"{a} {loss} PSNR" for a, loss in wide.columns]
    widgets.table(wide.reset_index(), "paper table psnr", key="paper-psnr")
    with widgets.details("SSIM and the tidy table", key="paper-tidy-open") as opened:
        if opened:
            widgets.table(paper, "paper table", key="paper-tidy")
    st.caption(
        "Not directly comparable with the bundled reproduction: the paper trains on DIV2K with "
        "full-size models and scores with its own protocol; the reproduction trains small models on "
        "the bundled images. Compare directions (does GV help?), not absolute numbers."
    )


def shipped_tab() -> None:
    """The bundled reproduction under the chosen protocol, its paired differences, summary and the paper's table."""
    protocol = view_blocks.protocol_radio(
        st,
        "bm_protocol",
        help="standard: Y channel, border = scale (BasicSR). official: the GV paper's code.",
    )
    shipped_results(protocol)
    if (state.results_dir() / f"eval_{protocol}.csv").is_file():
        paired_forest(protocol)
        summary_section()
    paper_section()


# --- live evaluation -----------------------------------------------------------------------------------------
def live_checkpoints(container: Any, protocol: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The checkpoints to score, by source group; the landing page's pair preselected. ``(chosen, offered)``."""
    # bundled, your runs (GVLAB_RUNS) and checkpoint folders (GVLAB_CHECKPOINTS), grouped by source
    usable = {c["choice"]: c for c in loaders.model_choices(protocol)}
    if not usable:
        st.info(
            f"No checkpoints trained on {protocol} LR (bundled, GVLAB_RUNS or GVLAB_CHECKPOINTS); the "
            "evaluation then scores the interpolation baseline only."
        )
    chosen: list[str] = []
    for group, title, key in GROUPS:
        offered = [c for c in usable.values() if c["group"] == group]
        names = [str(c["choice"]) for c in offered]
        if names or group == "bundled":
            chosen += container.multiselect(
                f"{title} checkpoints",
                names,
                default=view_blocks.default_choices(offered, protocol) if group == "bundled" else [],
                key=key,
                bind=URL,
                format_func=widgets.labels({n: f"{n} (x{usable[n]['scale']})" for n in names}),
            )
    return chosen, usable


def live_images(container: Any) -> tuple[str, list[Path]]:
    """The images to score: the bundled test split, a benchmark set by name or a server folder. ``(source, paths)``."""
    from gvcore.data.layouts import find_named_datasets

    named = {k: v for r in state.data_roots() if r.is_dir() for k, v in find_named_datasets(r).items()}
    sources = [s for s in SOURCES if s != "benchmark set" or named]
    source = str(container.radio("Images", sources, key="bm_source", bind=URL))
    if source == "bundled test split":
        return source, [Path(p) for p in loaders.bundled_images().values()]
    if (
        source == "benchmark set"
    ):  # the whole set folder: its layout's LR files are used (gvcore.data.layouts)
        return source, [named[container.selectbox("Set", list(named), key="bm_set", bind=URL)]]
    folder = view_blocks.server_folder(container, "bm")
    if folder is None:
        return source, []
    st.caption(f"{len(folder.images)} image(s) found.")
    return source, folder.images


def evaluate_now(
    chosen: list[str], usable: dict[str, dict[str, Any]], paths: list[Path], protocol: str
) -> None:
    """Score the chosen checkpoints on ``paths`` (``gvcore.eval.evaluate.evaluate``), one image at a time, into the session."""
    from gvcore.eval.evaluate import evaluate
    from gvcore.protocol import Protocol

    scales = sorted({usable[c]["scale"] for c in chosen}) or [2]
    bar = st.progress(0.0, text="Evaluating…")
    frames, total, done, device = [], len(paths) * len(scales), 0, state.device()
    for scale in scales:
        ckpts = [usable[label]["path"] for label in chosen if usable[label]["scale"] == scale]
        for path in paths:
            try:
                table = evaluate(
                    ckpts, str(path), scale, Protocol.parse(protocol), device=device, progress=False
                )
                frames.append(table)
            except (ValueError, OSError) as err:
                st.warning(f"Skipped {path.name}: {without_paths(str(err))}")
            done += 1
            bar.progress(done / total, text=f"Evaluating x{scale}: {path.name} ({done}/{total})")
    bar.empty()
    st.session_state["live-results"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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


def live_tab() -> None:
    """Pick checkpoints and images, evaluate, and read the results; the report of the same checkpoints."""
    l1, l2 = st.columns(2)
    protocol = view_blocks.protocol_radio(
        l1,
        "bm_live_protocol",
        help="Lists the checkpoints trained on this protocol's degradation (a model is only scored on the LR "
        "its training LR was made like).",
    )
    chosen, usable = live_checkpoints(l1, protocol)
    source, paths = live_images(l2)
    st.caption("Scored by `gvcore.eval.evaluate.evaluate` image by image: the same numbers as `gvcore eval`.")
    st.caption(loaders.lpips_note())
    if st.button("Evaluate", type="primary", key="live-run", disabled=not paths):
        evaluate_now(chosen, usable, paths, protocol)
    live = st.session_state.get("live-results")
    if live is not None and not live.empty:
        show_results(live, "live")
    elif live is None:
        st.caption("Choose checkpoints and images, then press Evaluate.")
    report_download(chosen, usable, protocol, source)


def render() -> None:
    """The Benchmark page: three tabs (the open one in the URL), each drawn in full."""
    st.title("Benchmark")
    tab_shipped, tab_live, tab_db = st.tabs(TABS, key="bm_tab", bind=URL)
    with tab_db:
        results_view.results_database_section(show_results)
    with tab_shipped:
        shipped_tab()
    with tab_live:
        live_tab()


render()
