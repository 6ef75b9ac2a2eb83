"""The landing page's interactive sections, as fragments: moving their control reruns only the section.

They live in a module, not in the page script, and take a :class:`ViewRequest` (paths and settings, no pixels):
Streamlit keeps a fragment and its arguments in the session, and a function made by the page script would keep
the page's every array alive with it. Each section reads its :class:`ObservationView` from the data cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import analysis, loaders, state, widgets
from dashboard.figures.curves import tradeoff_figure
from dashboard.figures.images import crops_row
from dashboard.figures.maps import heatmap_grid
from dashboard.observation_view import ObservationView

__all__ = ["ViewRequest", "difference_section", "lambda_section"]


@dataclass(frozen=True)
class ViewRequest:
    """What identifies a landing view: image path, scale, protocol, the pair's and the sweep's checkpoint paths."""

    image_path: str
    scale: int
    protocol: str
    pair: tuple[str, ...]
    sweep: tuple[str, ...]
    arch: str

    def view(self) -> ObservationView:
        """The view (memory, then disk, then computed once: :func:`dashboard.loaders.observation_view`)."""
        return loaders.observation_view(self.image_path, self.scale, self.protocol, self.pair, self.sweep)


@st.fragment
def difference_section(request: ViewRequest) -> None:
    """The signed L1+GV - L1 difference, amplified by a chosen factor."""
    view = request.view()
    if view.difference is None:
        return
    st.subheader("What GV changed: L1+GV - L1")
    d1, d2 = st.columns([1, 2])
    amp = d1.select_slider(
        "Difference amplification",
        options=analysis.DIFFERENCE_FACTORS,
        value=analysis.DEFAULT_DIFFERENCE_FACTOR,
        key="obs_amp",
        bind="query-params",
    )
    d1.caption(
        f"{analysis.DIFFERENCE_CONVENTION.format(a='L1+GV', b='L1', factor=amp)} Mean |difference| "
        f"{view.mean_abs_difference:.2f} levels."
    )
    d2.image(
        analysis.difference_image(view.difference, amp), caption=f"(L1+GV - L1) x{amp}", output_format="PNG"
    )


@st.fragment
def lambda_section(request: ViewRequest) -> None:
    """The λ sweep of the pair's architecture on this image: crops, region variance and the trade-off chart."""
    view = request.view()
    st.subheader(f"How much GV? The λ dose-response ({request.arch}, x{request.scale})")
    if view.sweep is None or view.region is None:
        infos = loaders.checkpoint_infos(str(state.sweep_dir()), loaders.folder_key(state.sweep_dir()))
        with_sweep = sorted({str(i.get("arch")) for i in infos if "error" not in i})
        st.info(
            f"No λ sweep for {request.arch} at x{request.scale} under the {request.protocol} protocol: the bundled "
            f"sweep was trained for {', '.join(with_sweep) or 'no architecture'} under the standard protocol. "
            "Pick that pair above to see it."
        )
        return
    sweep = view.sweep
    lambdas = [float(v) for v in sweep["lambda"]]
    lam = st.select_slider(
        "λ (weight of the GV loss; 0 = L1 alone)",
        options=lambdas,
        value=lambdas[min(2, len(lambdas) - 1)],
        format_func="{:g}".format,
        key="obs_lambda",
        bind="query-params",
    )
    chosen = str(sweep["method"].iloc[lambdas.index(lam)])
    curves = [sweep.assign(source=f"{view.image} (this image)")]
    table_path = state.results_dir() / "lambda_sweep.csv"
    if table_path.is_file():
        held = loaders.eval_table_any(str(table_path), loaders.file_key(table_path))
        if "scale" in held:
            held = held[held["scale"] == request.scale]
        if "arch" in held:
            held = held[held["arch"] == request.arch]
        curves.append(held.assign(source="held-out train images (shipped)"))
    c1, c2 = st.columns([2, 3])
    top, left, side = view.region
    with c1:
        crops = {"HR": view.crops["HR"], f"λ = {lam:g}": view.sweep_crops[chosen]}
        widgets.chart(crops_row(crops, height=260), "lambda crop", key="obs-lambda-crop")
        hr_region = view.variance["HR"][top // 8 : (top + side) // 8, left // 8 : (left + side) // 8]
        region_v = {
            "HR": np.log10(np.maximum(hr_region, 1e-6)),
            f"λ = {lam:g}": np.log10(np.maximum(view.sweep_variance[chosen], 1e-6)),
        }
        widgets.chart(
            heatmap_grid(
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
            tradeoff_figure(
                pd.concat(curves, ignore_index=True), lam, f"λ trade-off, {request.arch} x{request.scale}"
            ),
            "lambda tradeoff",
            key="obs-tradeoff",
        )
    row_now = sweep[(sweep["lambda"] - lam).abs() < 1e-12].iloc[0]
    st.caption(
        f"At λ = {lam:g} on {view.image}: PSNR {row_now['psnr']:.3f} dB, SR/HR variance ratio "
        f"{row_now['var_ratio']:.3f}, GV distance {row_now['gv_distance']:.4g} (standard protocol; sweep models "
        "are trained on the train split minus the held-out images). The GV distance is two-sided: a ratio above 1 "
        "(more variance than HR) is error too."
    )
