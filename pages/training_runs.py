"""Training runs: loss curves, validation metrics and variance statistics of run directories.

Pick run directories (``log.csv`` + checkpoints) and read their loss curves (pixel and GV terms), validation
PSNR/SSIM, gradient variance and SR/HR variance ratio over steps, L1 and L1+GV runs overlaid; plus the bundled
reproduction's lambda sweep. The runs, the log scale and the sweep's axes are in the URL (``tr_…``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import catalog, loaders, state, view_blocks, widgets
from dashboard.figures.curves import sweep_figure, training_curves
from dashboard.view_blocks import URL

#: the curves, two per row: (log columns, title, export name, chart key, log scale allowed)
CURVES = (
    (["loss"], "Training loss", "training loss", "runs-loss", True),
    (["loss_pixel", "loss_gv"], "Pixel and GV terms", "loss terms", "runs-terms", True),
    (["val_psnr"], "Validation PSNR (dB)", "val psnr", "runs-psnr", False),
    (["val_ssim"], "Validation SSIM", "val ssim", "runs-ssim", False),
    (["val_gv"], "Validation GV distance", "val gv", "runs-gv", True),
    (["val_var_ratio"], "SR/HR gradient-variance ratio", "val var ratio", "runs-ratio", False),
)


def no_logs_info() -> None:
    """Where the page looked (folder names only) and how to get a training log."""
    st.info(
        "No training logs found in "
        + ", ".join(f"`{r.name}`" for r in state.runs_roots())
        + " or the bundled reproduction's `results/logs`. Train one with `python -m gvcore train --out "
        "runs/<name>` or set GVLAB_RUNS to folders that hold run directories."
    )


def pick_runs(available: dict[str, Path]) -> list[tuple[str, str]]:
    """The runs to show (the landing page's pair preselected): ``(label, log path)`` each."""
    labels = list(available)
    picked = st.multiselect(
        "Runs (run directories, and `shipped/…`: the bundled reproduction's logs)",
        labels,
        default=view_blocks.default_logs(labels),
        key="tr_runs",
        bind=URL,
    )
    return [(label, str(available[label])) for label in picked]


def configs_section(chosen: list[tuple[str, str]]) -> None:
    """The runs' ``config.json`` side by side (run folders named, never their server paths)."""
    configs = pd.DataFrame(
        [
            {"run": label, **{k: str(v) for k, v in catalog.read_run_config(Path(path).parent).items()}}
            for label, path in chosen
            if Path(path).name == "log.csv"
        ]
    )
    if len(configs.columns) > 1:
        with widgets.details("Run configurations (config.json)", key="runs-configs-open") as opened:
            if opened:
                widgets.table(configs, "run configs", key="runs-configs")


def curves_section(logs: pd.DataFrame) -> None:
    """The six curves (losses, validation metrics), two per row, runs overlaid; the logs as a table."""
    log_y = st.toggle("Log scale for losses", value=True, key="tr_logy", bind=URL)
    for row in (CURVES[0:2], CURVES[2:4], CURVES[4:6]):
        for column, (columns, title, name, key, loggable) in zip(st.columns(2), row, strict=True):
            with column:
                fig = training_curves(logs, columns, title, log_y=bool(log_y) and loggable)
                if columns == ["val_var_ratio"]:  # HR's level, the reference the runs are read against
                    fig.add_hline(y=1.0, line={"dash": "dot", "color": "black"}, annotation_text="HR")
                widgets.chart(view_blocks.titled_legend(fig, "run · column"), name, key=key)
    st.caption("val_var_ratio: mean patch variance of the SR gradients over that of HR (1 = structure kept).")
    widgets.table(logs, "training logs", key="runs-table")


def runs_section() -> None:
    """The chosen runs' configurations and curves."""
    available = catalog.find_training_logs(state.runs_roots(), state.results_dir())
    if not available:
        no_logs_info()
        return
    chosen = pick_runs(available)
    signature = ";".join(f"{path}:{loaders.file_key(path)}" for _, path in chosen)
    logs = loaders.run_logs(tuple(chosen), signature)
    if logs.empty:
        st.info("Pick at least one run with a readable log.")
        return
    configs_section(chosen)
    curves_section(logs)


def sweep_section() -> None:
    """The bundled reproduction's λ sweep: a chosen metric against λ (or the variance ratio), and the table."""
    sweep_path = state.results_dir() / "lambda_sweep.csv"
    st.subheader("λ sweep of the bundled reproduction")
    if not sweep_path.is_file():
        st.info(f"No `{sweep_path.name}` yet (the bundled reproduction writes it).")
        return
    sweep = loaders.eval_table_any(str(sweep_path), loaders.file_key(sweep_path))
    numeric = [c for c in sweep.columns if pd.api.types.is_numeric_dtype(sweep[c])]
    x_options = [c for c in ("gv_weight", "lambda", "var_ratio") if c in numeric] or numeric[:1]
    y_options = [c for c in ("psnr", "ssim", "var_ratio", "gv_distance") if c in numeric] or numeric[1:2]
    if x_options and y_options:
        s1, s2 = st.columns(2)
        x = s1.selectbox("x", x_options, key="tr_sweep_x", bind=URL)
        y = s2.selectbox("y", y_options, key="tr_sweep_y", bind=URL)
        fig = sweep_figure(sweep, str(x), str(y))
        groups = [c for c in ("arch", "scale", "protocol") if c in sweep and sweep[c].nunique() > 1]
        widgets.chart(
            view_blocks.titled_legend(fig, " · ".join(groups) or "sweep"), "lambda sweep", key="sweep-chart"
        )
    widgets.table(sweep, "lambda sweep", key="sweep-table")


def render() -> None:
    """The Training runs page: the chosen runs' curves, then the λ sweep."""
    st.title("Training runs")
    runs_section()
    sweep_section()


render()
