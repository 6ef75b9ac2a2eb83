"""Training snapshots: held-out PSNR, SSIM, variance ratio and GV distance against training iteration.

Several snapshot folders are overlaid (e.g. L1 vs L1+GV). Every checkpoint of a folder is scored by
``gvcore.eval.evaluate.evaluate`` (the numbers of ``gvcore eval --ckpt DIR``), cached per folder and images. The
folders, images and protocol are in the URL (``snap_…``): a link reopens the same curves.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import snapshot_figures, snapshot_store, state, view_blocks, widgets
from dashboard.safety import without_paths
from dashboard.view_blocks import URL
from gvcore.data.layouts import detect_layout, find_named_datasets
from gvcore.data.snapshots import SNAPSHOT_SUFFIXES, find_snapshot_folders

#: the reference rows of the means table (HR and the interpolation baselines), shown before the snapshots
REFERENCES = ("HR", "bicubic", "bilinear")


def image_sets() -> dict[str, str]:
    """Image sets to score on: benchmark sets and folders under the data roots, then the bundled test split."""
    sets: dict[str, str] = {}
    for root in state.data_roots():
        if not root.is_dir():
            continue
        for name, folder in find_named_datasets(root).items():
            sets.setdefault(name, str(folder))
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                if detect_layout(folder).sources and str(folder) not in sets.values():
                    sets[f"{root.name}/{folder.name}"] = str(folder)
            except (ValueError, OSError):
                continue
    sets["bundled test split"] = "bundled"
    return sets


def folder_signature(folder: Path) -> str:
    """Names, sizes and mtimes of a folder's checkpoints: a rewritten or new snapshot invalidates the cache."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SNAPSHOT_SUFFIXES)
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


@st.cache_data(show_spinner=False, max_entries=32)
def stored_series(
    folder: str, data: str, protocol: str, signature: str
) -> tuple[pd.DataFrame, list[str]] | None:
    """The folder's scored series if it was scored before (shipped, or on this machine), else ``None``."""
    del signature
    return snapshot_store.load_series(snapshot_store.series_key(folder, data, protocol))


def score_series(folder: str, data: str, protocol: str) -> tuple[pd.DataFrame, list[str]]:
    """Score every checkpoint of ``folder`` now (``gvcore.eval.evaluate.evaluate``) and keep it in the user cache."""
    frame, errors = snapshot_store.compute_series(folder, data, protocol, state.device())
    snapshot_store.save_series(snapshot_store.series_key(folder, data, protocol), frame, errors)
    stored_series.clear()
    return frame, errors


def means_table(means: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """HR's and the baselines' means (once, without an iteration), then each snapshot's.

    Example:
        >>> m = pd.DataFrame({"series": ["a", "a", "b"], "method": ["HR", "s1", "HR"], "iteration": [None, 1, None]})
        >>> means_table(m, m[m["iteration"].notna()])["method"].tolist()
        ['HR', 's1']
    """
    references = means[means["iteration"].isna() & means["method"].isin(REFERENCES)]
    references = references.drop_duplicates("method").assign(series=None)
    return pd.concat([references, snapshots], ignore_index=True)


def show_curves(tables: dict[str, pd.DataFrame]) -> None:
    """The four iteration curves, the per-checkpoint means (HR's and the baseline's first) and the per-image table."""
    from gvcore.eval.evaluate import summarize

    per_image = pd.concat([t.assign(series=name) for name, t in tables.items()], ignore_index=True)
    means = pd.concat([summarize(t).assign(series=name) for name, t in tables.items()], ignore_index=True)
    baselines = means[means["method"].isin(["bicubic", "bilinear"])].groupby("method", sort=False).first()
    snapshots = means[means["iteration"].notna()]
    if snapshots.empty:
        st.info(
            "No checkpoint with an iteration in its name (step_000500.safetensors, net_g_5000.pth) was scored."
        )
        return
    metrics = list(snapshot_figures.SNAPSHOT_METRICS)
    for row_metrics in (metrics[:2], metrics[2:]):
        for column, metric in zip(st.columns(2), row_metrics, strict=True):
            baseline = float(baselines[metric].iloc[0]) if len(baselines) else None
            with column:
                widgets.chart(
                    snapshot_figures.iteration_curve(snapshots, metric, baseline),
                    f"snapshots {metric}",
                    key=f"snap-{metric}",
                )
    shown = ["series", "method", "iteration", "images", *snapshot_figures.SNAPSHOT_METRICS]
    widgets.table(means_table(means, snapshots)[shown].round(4), "snapshot means", key="snap-means")
    with widgets.details("Per-image table", key="snap-per-image-open") as opened:
        if opened:
            widgets.table(per_image, "snapshots per image", key="snap-per-image")


def no_folders_info(roots: list[Path]) -> None:
    """Where the page looked (folder names only) and how to keep snapshots."""
    st.info(
        "No snapshot folder found in "
        + ", ".join(f"`{r.name}`" for r in roots)
        + " (GVLAB_RUNS, or `gvcore dashboard --runs DIR`). Keep snapshots while training (`gvcore train "
        "--keep-snapshots --out runs/<name>` writes `runs/<name>/snapshots/step_000500.safetensors`), or point "
        f"GVLAB_RUNS at folders holding BasicSR `net_g_<iter>.pth` files (several roots separated by '{os.pathsep}')."
    )


def controls(folders: dict[str, Path]) -> tuple[list[str], str, str]:
    """The folders (runs), the images and the protocol, all in the URL. ``(folder names, data, protocol)``."""
    c1, c2, c3 = st.columns([3, 2, 1])
    picked = c1.multiselect(
        "Snapshot folders (runs)", list(folders), default=list(folders)[:4], key="snap_folders", bind=URL
    )
    sets = image_sets()
    data_label = c2.selectbox("Images", list(sets), key="snap_images", bind=URL)
    protocol = c3.radio("Protocol", view_blocks.PROTOCOLS, key="snap_protocol", bind=URL)
    st.caption(
        "Scored by `gvcore.eval.evaluate.evaluate`, the numbers of `gvcore eval --ckpt DIR`; each (folder, images, "
        "protocol) is scored once and kept on disk (the shipped runs come scored on the bundled test split)."
    )
    return list(picked), sets[str(data_label)], str(protocol)


def stored_for(
    picked: list[str], folders: dict[str, Path], data: str, protocol: str
) -> tuple[dict[str, tuple[pd.DataFrame, list[str]]], list[str]]:
    """The picked folders' series scored before, and the names of those not scored yet. ``(stored, missing)``."""
    stored: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    missing: list[str] = []
    for name in picked:
        try:
            found = stored_series(str(folders[name]), data, protocol, folder_signature(folders[name]))
        except (ValueError, OSError) as err:
            st.error(f"{name}: {without_paths(str(err))}")
            continue
        if found is None:
            missing.append(name)
        else:
            stored[name] = found
    return stored, missing


def score_missing(
    missing: list[str], folders: dict[str, Path], data: str, protocol: str
) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """A button that scores the folders not scored yet (progress bar); their series once scored."""
    scored: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    st.caption(f"Not scored yet on these images: {', '.join(missing)}.")
    if not st.button(f"Score {len(missing)} snapshot folder(s)", type="primary", key="snap-run"):
        return scored
    bar = st.progress(0.0, text="Scoring every snapshot…")
    for index, name in enumerate(missing, start=1):
        try:
            scored[name] = score_series(str(folders[name]), data, protocol)
        except (ValueError, OSError) as err:
            st.error(f"{name}: {without_paths(str(err))}")
        bar.progress(index / len(missing), text=f"{name} ({index}/{len(missing)})")
    bar.empty()
    return scored


def render() -> None:
    """The Training snapshots page: pick folders, images and protocol; score what is missing; the curves."""
    st.title("Training snapshots")
    st.caption(
        "How structure evolves over training: each snapshot of a run is scored on held-out images. TensorBoard "
        "shows the training loss; this shows PSNR/SSIM and the gradient-variance ratio (1 = as much structure "
        "as HR) of the outputs, per iteration."
    )
    roots = state.runs_roots()
    folders = find_snapshot_folders(roots)
    if not folders:
        no_folders_info(roots)
        return
    picked, data, protocol = controls(folders)
    stored, missing = stored_for(picked, folders, data, protocol)
    if missing:
        stored |= score_missing(missing, folders, data, protocol)
    for name, (_, errors) in stored.items():
        for line in errors:
            st.warning(f"{name}: skipped {without_paths(line)}")
    if stored:
        show_curves({name: frame for name, (frame, _) in stored.items()})
    elif not missing:
        st.caption("Pick snapshot folders.")


render()
