"""Training runs: loss curves, validation metrics and variance statistics of run directories.

Pick run directories (``log.csv`` + checkpoints) and read their loss curves (pixel and GV terms), validation
PSNR/SSIM, gradient variance and SR/HR variance ratio over steps, L1 and L1+GV runs overlaid; plus the bundled
reproduction's lambda sweep.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import catalog, loaders, state, widgets
from dashboard.figures.curves import sweep_figure, training_curves

st.title("Training runs")

roots = state.runs_roots()
available = catalog.find_training_logs(roots, state.results_dir())
if not available:
    st.info(
        "No training logs found in "
        + ", ".join(f"`{r}`" for r in roots)
        + f" or `{state.results_dir() / 'logs'}`. Train one with `python -m gvcore train --out runs/<name>` "
        "or set GVLAB_RUNS to folders that hold run directories."
    )
else:
    labels = list(available)
    picked = st.multiselect(
        "Runs (run directories, and `shipped/…`: the bundled reproduction's logs)",
        labels,
        default=catalog.default_log_selection(labels),
        key="runs-picked",
    )
    chosen = [(label, str(available[label])) for label in picked]
    signature = ";".join(f"{path}:{loaders.file_key(path)}" for _, path in chosen)
    logs = loaders.run_logs(tuple(chosen), signature)
    if logs.empty:
        st.info("Pick at least one run with a readable log.")
    else:
        configs = pd.DataFrame(
            [
                {"run": label, **{k: str(v) for k, v in catalog.read_run_config(Path(path).parent).items()}}
                for label, path in chosen
                if Path(path).name == "log.csv"
            ]
        )
        if len(configs.columns) > 1:
            with st.expander("Run configurations (config.json)"):
                widgets.table(configs, "run configs", key="runs-configs")
        log_y = st.toggle("Log scale for losses", value=True, key="runs-logy")
        col_loss, col_parts = st.columns(2)
        with col_loss:
            widgets.chart(
                training_curves(logs, ["loss"], "Training loss", log_y=log_y),
                "training loss",
                key="runs-loss",
            )
        with col_parts:
            widgets.chart(
                training_curves(logs, ["loss_pixel", "loss_gv"], "Pixel and GV terms", log_y=log_y),
                "loss terms",
                key="runs-terms",
            )
        col_psnr, col_ssim = st.columns(2)
        with col_psnr:
            widgets.chart(
                training_curves(logs, ["val_psnr"], "Validation PSNR (dB)"),
                "val psnr",
                key="runs-psnr",
            )
        with col_ssim:
            widgets.chart(training_curves(logs, ["val_ssim"], "Validation SSIM"), "val ssim", key="runs-ssim")
        col_gv, col_ratio = st.columns(2)
        with col_gv:
            widgets.chart(
                training_curves(logs, ["val_gv"], "Validation GV distance", log_y=log_y),
                "val gv",
                key="runs-gv",
            )
        with col_ratio:
            widgets.chart(
                training_curves(logs, ["val_var_ratio"], "SR/HR gradient-variance ratio"),
                "val var ratio",
                key="runs-ratio",
            )
        st.caption(
            "val_var_ratio: mean patch variance of the SR gradients over that of HR (1 = structure kept)."
        )
        widgets.table(logs, "training logs", key="runs-table")

# --- the lambda sweep of the bundled reproduction ------------------------------------------------------------
sweep_path = state.results_dir() / "lambda_sweep.csv"
st.subheader("λ sweep of the bundled reproduction")
if not sweep_path.is_file():
    st.info(f"No `{sweep_path}` yet (the bundled reproduction writes it).")
else:
    sweep = loaders.eval_table_any(str(sweep_path), loaders.file_key(sweep_path))
    numeric = [c for c in sweep.columns if pd.api.types.is_numeric_dtype(sweep[c])]
    x_options = [c for c in ("gv_weight", "lambda", "var_ratio") if c in numeric] or numeric[:1]
    y_options = [c for c in ("psnr", "ssim", "var_ratio", "gv_distance") if c in numeric] or numeric[1:2]
    if x_options and y_options:
        s1, s2 = st.columns(2)
        x = s1.selectbox("x", x_options, key="sweep-x")
        y = s2.selectbox("y", y_options, key="sweep-y")
        widgets.chart(sweep_figure(sweep, x, y), "lambda sweep", key="sweep-chart")
    widgets.table(sweep, "lambda sweep", key="sweep-table")
