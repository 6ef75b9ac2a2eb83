"""``gvcore report``: one self-contained HTML file to share a structure atlas with someone who runs no server.

The file holds the metric table with paired statistics (:mod:`gvcore.eval.stats`), the per-image table, the
observation figures of the image with the worst region (variance maps, histograms, mean variance per method),
the atlas gallery (aligned crops of HR, the baseline and each checkpoint, with image name, position and deficit),
the λ trade-off curve when sweep checkpoints are given, and the exact command and versions. Plotly figures are
interactive, with plotly.js embedded once (no CDN); images are lossless PNG ``data:`` URIs; a Content Security
Policy forbids every request, so the page opens offline and never contacts a host. Crops are downsampled (area
average, by 2, 4, 8) when the file would exceed the size budget.

Every number comes from :mod:`gvcore.eval.atlas` / :mod:`gvcore.eval.scoring` / :mod:`gvcore.eval.evaluate`; nothing is
recomputed here. This module imports Plotly, so ``gvcore`` imports it lazily (``gvcore report``).
"""

from __future__ import annotations

import datetime
import html
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image

from dashboard import analysis, atlas_figures
from dashboard.compare_slider import png_data_uri
from dashboard.figures.axes import plotly_config, with_wrapped_titles
from dashboard.figures.bars import mean_variance_bars
from dashboard.figures.curves import tradeoff_figure
from dashboard.figures.histograms import histogram_overlay
from dashboard.figures.maps import heatmap_grid
from gvcore.eval.atlas import AtlasRegion, AtlasResult, Direction, build_atlas, load_checkpoints
from gvcore.protocol import Protocol, ProtocolLike

__all__ = ["MAX_REPORT_BYTES", "build_report", "paired_frame", "render_report", "write_report"]

#: the default size budget of a report (bytes).
MAX_REPORT_BYTES = 20 * 2**20
#: a crop is drawn this many CSS pixels wide (nearest-neighbour, exact pixels).
CROP_DISPLAY_PX = 128
#: variance maps in the report are pooled to at most this side (keeps the file small).
MAP_MAX_SIDE = 128
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'"
)
#: click a table header to sort by that column (numbers numerically, empty cells last); click again to reverse.
_SORT_TABLES = """
document.querySelectorAll('table.sortable').forEach(table => {
  table.querySelectorAll('th').forEach((th, col) => {
    th.title = 'click to sort'; th.style.cursor = 'pointer';
    th.addEventListener('click', () => {
      const body = table.tBodies[0], rows = [...body.rows], up = th.dataset.order !== 'asc';
      const key = r => { const t = r.cells[col].textContent.trim(); const n = parseFloat(t);
                         return t === '' ? null : (isNaN(n) ? t : n); };
      rows.sort((a, b) => { const x = key(a), y = key(b); if (x === null) return 1; if (y === null) return -1;
                            return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
      th.dataset.order = up ? 'asc' : 'desc'; rows.forEach(r => body.appendChild(r));
    });
  });
});
"""
_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.gallery{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #ddd;border-radius:6px;padding:8px}
.crops{display:flex;gap:6px}.crop{text-align:center;font-size:11px;max-width:132px;overflow-wrap:anywhere}
.crop img{width:128px;height:128px;image-rendering:pixelated;display:block}
.meta{font-size:12px;margin-top:4px}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}
"""


def paired_frame(
    result: AtlasResult, metrics: Sequence[str] = ("psnr", "ssim", "var_ratio", "gv_distance")
) -> pd.DataFrame:
    """Paired statistics (:func:`gvcore.eval.stats.paired_statistics`) of every output against a reference, by image.

    The reference is the atlas pair's ``A`` (e.g. L1), else the baseline.

    Returns:
        Columns ``comparison, metric, n, n_seeds, mean_delta, ci_low, ci_high, p_value`` (delta = method -
        reference; n = images; n_seeds = 1, one checkpoint per method).
    """
    from gvcore.eval.stats import paired_statistics

    table = result.table
    reference = result.pair[0] if result.pair else result.methods[0]
    others = [m for m in result.methods if m != reference]
    base = table[table["method"] == reference].set_index("image")
    records = []
    for method in others:
        rows = table[table["method"] == method].set_index("image")
        common = base.index.intersection(rows.index)
        for metric in metrics:
            deltas = rows.loc[common, metric].to_numpy(float) - base.loc[common, metric].to_numpy(float)
            stats = paired_statistics(deltas)
            records.append(
                {
                    "comparison": f"{method} - {reference}",
                    "metric": metric,
                    "n": stats.n,
                    "n_seeds": 1,
                    "mean_delta": stats.mean_delta,
                    "ci_low": stats.ci_low,
                    "ci_high": stats.ci_high,
                    "p_value": stats.p_value,
                }
            )
    return pd.DataFrame(
        records,
        columns=["comparison", "metric", "n", "n_seeds", "mean_delta", "ci_low", "ci_high", "p_value"],
    )


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, classes="sortable"
    )


class _Figures:
    """Figures to HTML ``<div>`` fragments with deterministic ids (plotly.js is embedded once, elsewhere)."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: go.Figure, name: str) -> str:
        self.count += 1
        config = plotly_config("png", name)
        return pio.to_html(
            fig, full_html=False, include_plotlyjs=False, config=config, div_id=f"figure-{self.count}"
        )


def _shrink(crop: np.ndarray, factor: int) -> np.ndarray:
    return crop if factor == 1 else np.asarray(Image.fromarray(crop).reduce(factor))


def _gallery(result: AtlasResult, factor: int) -> str:
    """Cards of every ranking's regions: crops (HR, baseline, each checkpoint), image, position and deficits."""
    parts = []
    a, b = result.pair or ("", "")
    for ranking, regions in result.regions.items():
        title = atlas_figures.RANKING_TITLES[ranking].format(a=a, b=b)
        parts.append(f"<h3>{html.escape(title)}</h3>")
        if not regions:
            parts.append("<p>No region in this ranking (with these filters).</p>")
            continue
        cards = [_card(rank, region, factor) for rank, region in enumerate(regions, start=1)]
        parts.append('<div class="gallery">' + "".join(cards) + "</div>")
    note = f"<p>Crops downsampled {factor}x to fit the size budget.</p>" if factor > 1 else ""
    return note + "".join(parts)


def _card(rank: int, region: AtlasRegion, factor: int) -> str:
    crops = "".join(
        f'<div class="crop"><img alt="{html.escape(name)}" src="{png_data_uri(_shrink(crop, factor))}">'
        f"{html.escape(name)}</div>"
        for name, crop in region.crops.items()
    )
    deficits = ", ".join(f"{html.escape(m)} {d:.4g}" for m, d in region.deficits.items())
    meta = (
        f"#{rank} <b>{html.escape(region.image)}</b> at x={region.x}, y={region.y} ({region.size}x{region.size} px), "
        f"score {region.score:.4g}, V_HR {region.hr_variance:.4g}<br>deficit V_HR - V_out: {deficits}"
    )
    return f'<div class="card"><div class="crops">{crops}</div><div class="meta">{meta}</div></div>'


def _observation(result: AtlasResult, models: Mapping[str, Any], data: str | Path, fig: _Figures) -> str:
    """Variance maps, histograms and mean variance per method of the image holding the worst region."""
    from gvcore.data.sources import load_pairs, resolve_images
    from gvcore.eval.scoring import score_image

    worst = result.regions.get("worst") or []
    name = worst[0].image if worst else result.images[0]
    source = next(s for s in resolve_images(data, "test") if s.name == name)
    lr, hr = load_pairs([source], result.scale, result.protocol)[0].as_float()
    scored = score_image(hr, result.scale, result.protocol, models, lr=lr)
    outputs = {"HR": scored.hr, **scored.outputs}
    maps = {k: analysis.compute_maps(v, analysis.GradientSettings()) for k, v in outputs.items()}
    log_var = {
        k: np.log10(np.maximum(analysis.pool_for_display(m.variance[0], MAP_MAX_SIDE)[0], 1e-6))
        for k, m in maps.items()
    }
    heat = heatmap_grid(
        log_var,
        columns=min(4, len(log_var)),
        colorscale="Viridis",
        symmetric=False,
        title=f"{name}: log10 patch variance (mean of Gx, Gy), 8x8 patches",
    )
    hist = histogram_overlay(
        {k: m.variance for k, m in maps.items()}, title=f"{name}: patch variance (log10)"
    )
    bars = mean_variance_bars(analysis.rows_frame(scored.rows), title=f"{name}: mean gradient variance")
    return (
        f"<h2>The observation on {html.escape(name)} (the image of the worst region)</h2>"
        + fig.html(with_wrapped_titles(heat), "variance-maps")
        + fig.html(hist, "histograms")
        + fig.html(bars, "mean-variance")
    )


def _sweep(result: AtlasResult, data: str | Path, sweep: Sequence[str | Path], fig: _Figures) -> str:
    from gvcore.eval.evaluate import evaluate, summarize
    from gvcore.protocol import Protocol

    if not sweep:
        return ""
    frame = evaluate(list(sweep), data, result.scale, result.protocol, progress=False)
    frame = frame[frame["image"].isin(result.images)]  # the atlas's images only (its --image filter)
    checkpoints = frame[~frame["method"].isin(["HR", Protocol.parse(result.protocol).baseline])]
    means = summarize(checkpoints)
    curves = means.rename(columns={"gv_weight": "lambda"})[["lambda", "var_ratio", "psnr", "gv_distance"]]
    images = checkpoints["image"].nunique()
    curves = curves.assign(source=f"mean over {images} image(s)").sort_values("lambda")
    return "<h2>λ sweep</h2>" + fig.html(tradeoff_figure(curves, title="λ trade-off"), "lambda-sweep")


def _provenance(command: str, data: str | Path) -> str:
    import plotly
    import torch

    import gvcore

    versions = {
        "gvcore": gvcore.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "plotly": plotly.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in versions.items()
    )
    return (
        "<h2>How this report was made</h2>"
        f"<pre>{html.escape(command or '(made in the dashboard)')}</pre>"
        f"<p>Data: <code>{html.escape(str(data))}</code>; written {made}.</p><table>{rows}</table>"
    )


def render_report(
    result: AtlasResult,
    models: Mapping[str, Any],
    data: str | Path,
    *,
    sweep: Sequence[str | Path] = (),
    command: str = "",
    max_bytes: int = MAX_REPORT_BYTES,
) -> str:
    """The HTML report of an atlas (module docstring).

    Args:
        result: from :func:`gvcore.eval.atlas.build_atlas` (with crops).
        models: the atlas's models, label -> model (re-run on the observation image).
        data: the atlas's data argument (``"bundled"`` or a folder).
        sweep: λ-sweep checkpoints for the trade-off curve (scored by :func:`gvcore.eval.evaluate.evaluate`).
        command: the command line shown in the provenance section.
        max_bytes: size budget; crops are downsampled by 2, 4, 8 to fit it.

    Raises:
        ValueError: the report does not fit ``max_bytes`` even with crops downsampled 8x.
    """
    from plotly.offline import get_plotlyjs

    from gvcore.eval.evaluate import EVAL_COLUMNS, summarize

    fig = _Figures()
    summary = summarize(result.table[list(EVAL_COLUMNS)])
    summary_cols = ["method", "images", "var_ratio", "gv_distance", "psnr", "ssim", "var_gx", "var_gy"]
    per_image = result.table[
        ["image", "method", "var_ratio", "gv_distance", "psnr", "ssim", "worst_x", "worst_y", "worst_deficit"]
    ]
    a, b = result.pair or ("", "")
    head = (
        f"<h1>Structure atlas: x{result.scale}, {html.escape(result.protocol)} protocol</h1>"
        f"<p>{len(result.images)} image(s) of <code>{html.escape(str(data))}</code>; direction "
        f"{html.escape(result.direction)}; regions of {result.region}x{result.region} patches (8 px).</p>"
        "<h2>Metrics (mean over images)</h2>"
        + _table_html(summary[summary_cols])
        + "<h2>Paired statistics (the image is the unit; 95 % bootstrap CI, Wilcoxon p)</h2>"
        + "<p>Each method here is one checkpoint (one seed): a difference between two of them cannot be told "
        "apart from a seed effect. Compare several seeds per method with <code>gvcore eval</code> and "
        "<code>gvcore.eval.stats.paired_table</code>.</p>"
        + _table_html(paired_frame(result))
        + fig.html(atlas_figures.image_ratio_figure(result.table), "variance-ratio-per-image")
        + "<details open><summary>Per-image table (click a header to sort)</summary>"
        + _table_html(per_image)
        + "</details>"
    )
    body = head + _observation(result, models, data, fig)
    figs = "".join(
        fig.html(
            atlas_figures.region_deficit_figure(
                regions, result.methods, atlas_figures.RANKING_TITLES[name].format(a=a, b=b)
            ),
            f"atlas-{name}",
        )
        for name, regions in result.regions.items()
        if regions
    )
    tail = _sweep(result, data, sweep, fig) + _provenance(command, data)
    script = f"<script>{get_plotlyjs()}</script>"
    for factor in (1, 2, 4, 8):
        gallery = "<h2>Atlas gallery</h2>" + _gallery(result, factor)
        page = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>Structure atlas report</title><style>{_STYLE}</style>{script}</head>"
            f"<body>{body}{gallery}{figs}{tail}<script>{_SORT_TABLES}</script></body></html>"
        )
        if len(page.encode()) <= max_bytes:
            return page
    raise ValueError(
        f"the report is {len(page.encode()) / 2**20:.1f} MB, over the budget of {max_bytes / 2**20:.1f} MB even with "
        "crops downsampled 8x: use fewer images, a smaller top-k or fewer checkpoints"
    )


def build_report(
    checkpoints: Sequence[str | Path],
    data: str | Path,
    scale: int,
    protocol: ProtocolLike = "standard",
    *,
    sweep: Sequence[str | Path] = (),
    top_k: int = 12,
    direction: Direction = "both",
    region: int = 4,
    images: Sequence[str] | None = None,
    command: str = "",
    device: str = "cpu",
    max_bytes: int = MAX_REPORT_BYTES,
    progress: Callable[[int, int, str], None] | None = None,
) -> str:
    """Load the checkpoints, build the atlas (:func:`gvcore.eval.atlas.build_atlas`) and render the report's HTML."""
    protocol = Protocol.parse(protocol)
    models, infos = load_checkpoints(checkpoints, scale, protocol, device)
    result = build_atlas(
        models,
        data,
        scale,
        protocol,
        infos=infos,
        top_k=top_k,
        direction=direction,
        region=region,
        images=images,
        progress=progress,
    )
    return render_report(result, models, data, sweep=sweep, command=command, max_bytes=max_bytes)


def write_report(text: str, path: str | Path, force: bool = False) -> Path:
    """Write the report atomically (temp file + rename); an existing file only with ``force``.

    Raises:
        ValueError: ``path`` exists and ``force`` is false, or is a folder.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(
            f"cannot write {target}: it is a folder; give a file name such as {target / 'report.html'}"
        )
    if target.exists() and not force:
        raise ValueError(f"{target} exists; pass --force to overwrite it")
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
