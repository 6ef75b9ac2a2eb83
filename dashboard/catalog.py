"""What is on disk: bundled checkpoints (metadata only), reproduction results, training runs, the paper's table.

Plain functions over paths (formats: ``docs/ARCHITECTURE.md``); :mod:`dashboard.loaders` caches them.
Reading a gvcore checkpoint's metadata never loads its weights, so listing is cheap. A foreign checkpoint in a
``GVLAB_CHECKPOINTS`` folder (a ``.pth``/``.pt`` state dict, or a ``.safetensors`` without our metadata) has no
header to read: it is loaded once, safely (:func:`gvcore.checkpoint.store.load_model`: no pickle code runs, size
bounded), to learn its architecture and scale.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.state import REPO_ROOT

__all__ = [
    "FOLDER_SUFFIXES",
    "HEADER_BUDGET_S",
    "MAX_FOLDER_CHECKPOINTS",
    "SOURCE_GROUPS",
    "CheckpointInfo",
    "best_l1_arch",
    "checkpoint_degradation",
    "default_log_selection",
    "default_pair_labels",
    "find_paper_markdown",
    "find_run_dirs",
    "find_training_logs",
    "folder_checkpoint_infos",
    "header_rank",
    "list_checkpoints",
    "offered_under",
    "pair_l1_gv",
    "paper_table",
    "published_checkpoint_infos",
    "rank_checkpoint_files",
    "read_checkpoint_info",
    "read_eval_csv",
    "read_run_log",
    "run_checkpoint_infos",
    "selectable_checkpoints",
    "sources_signature",
    "sweep_points",
]

CheckpointInfo = dict[str, Any]
#: what a ``GVLAB_CHECKPOINTS`` folder is searched for (bundled folders hold ``.safetensors`` only).
FOLDER_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt")
#: the most checkpoints listed per folder (the best by header, :func:`rank_checkpoint_files`): foreign ones
#: are loaded to be listed.
MAX_FOLDER_CHECKPOINTS = 64
#: seconds of header checks per folder; files not checked by then rank last (by name).
HEADER_BUDGET_S = 5.0
#: a ``.safetensors`` header longer than this is not taken for a checkpoint's (real ones are far smaller).
MAX_HEADER_BYTES = 16 * 1024**2
_LOG = logging.getLogger(__name__)


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    """Metadata of a checkpoint as a dict: a gvcore ``.safetensors`` from its header only, else a foreign one.

    For ours: the fields of :class:`gvcore.checkpoint.store.CheckpointMeta`, plus ``path``, ``file``, ``gv_weight`` and
    ``loss_name``. A foreign file (a state dict as ``.pth``/``.pt``, or a ``.safetensors`` without gvcore
    metadata) goes to :func:`foreign_checkpoint_info`.

    Raises:
        gvcore.CheckpointError: unreadable, malformed or hostile file, or an unrecognised architecture.
    """
    from gvcore.checkpoint.meta import CheckpointError, CheckpointMeta, has_gvcore_metadata

    try:
        record = CheckpointMeta.read(path)  # ours: the header only
    except CheckpointError:
        if has_gvcore_metadata(path):  # ours, but malformed: say so
            raise
        return foreign_checkpoint_info(path)
    pixel = str((record.loss or {}).get("pixel", "l1")).upper()
    gv_weight = record.gv_weight
    info = {
        **record.as_dict(),
        "path": str(path),
        "file": path.name,
        "gv_weight": gv_weight,
        "label": str(record.label or path.stem),
        "loss_name": f"{pixel}+GV (λ={gv_weight:g})" if gv_weight > 0 else pixel,
        "degradation": record.degradation or ("official" if path.parent.name == "official" else None),
        "published": record.published,
    }
    if record.published:  # gvcore.zoo.registry: trained elsewhere, as its authors published it
        provenance = record.provenance or {}
        info["loss_name"] = f"{provenance.get('training', record.recipe)} (published, {record.data})"
    return info


def foreign_checkpoint_info(path: Path) -> CheckpointInfo:
    """A foreign checkpoint's info, from loading it once as :func:`gvcore.checkpoint.store.load_model` does.

    Its loss is unknown (``gv_weight`` ``None``) and it is taken to be trained on the standard degradation (no
    ``degradation`` stored), like a gvcore checkpoint without one.
    """
    from gvcore.checkpoint.store import load_model

    model, metadata = load_model(path)
    del model
    return {
        "path": str(path),
        "file": path.name,
        "label": str(metadata.get("label") or path.stem),
        "arch": metadata.get("arch"),
        "scale": metadata.get("scale"),
        "format": str(metadata.get("source") or "foreign"),
        "gv_weight": None,
        "loss_name": "unknown (not a gvcore checkpoint)",
        "degradation": None,
    }


def header_rank(path: Path) -> int | None:
    """How likely ``path`` is a checkpoint, from its first bytes only (no weights read, nothing unpickled).

    Returns:
        0 a gvcore ``.safetensors`` header, 1 another ``.safetensors`` whose header is consistent with the file
        size, 2 a ``torch.save`` zip archive (a ``data.pkl``, no TorchScript), 3 a bare pickle (protocol 2 to
        5); ``None``: not a checkpoint (unreadable, empty, junk).
    """
    from gvcore.checkpoint.meta import is_gvcore_format

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if path.suffix.lower() == ".safetensors":
                length = int.from_bytes(head, "little") if len(head) == 8 else 0
                if not 2 <= length <= min(size - 8, MAX_HEADER_BYTES):
                    return None
                header = json.loads(handle.read(length))
                return _safetensors_rank(header, size - 8 - length, is_gvcore_format)
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            pickled = any(n.endswith("data.pkl") for n in names)
            return 2 if pickled and not any(n.endswith("constants.pkl") for n in names) else None
        return 3 if len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5 else None
    except (OSError, ValueError, zipfile.BadZipFile, RecursionError):
        return None


def _safetensors_rank(header: Any, data_bytes: int, is_ours: Callable[[dict[str, str]], bool]) -> int | None:
    if not isinstance(header, dict):
        return None
    metadata = header.pop("__metadata__", None)
    ends = []
    for entry in header.values():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return None
        ends.append(offsets[1])
    if not ends or max(ends) != data_bytes:
        return None
    return 0 if isinstance(metadata, dict) and is_ours(metadata) else 1


def rank_checkpoint_files(
    paths: list[Path],
    limit: int | None,
    budget_s: float = HEADER_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Path], list[str]]:
    """The files worth loading, at most ``limit`` (the best headers), by name: junk cannot push a good one out.

    Every file's header is checked (:func:`header_rank`) until ``budget_s`` seconds have passed; files not
    checked by then rank after every checked candidate, by name. Files whose header is not a checkpoint are
    skipped, as are candidates beyond ``limit``.

    Returns:
        ``(chosen paths, skip notes)``: the notes say how many files were skipped and why (empty: none).
    """
    start = clock()
    ranked: list[tuple[int, str, Path]] = []
    junk = unchecked = 0
    for path in paths:
        if clock() - start > budget_s:
            ranked.append((4, path.name, path))
            unchecked += 1
            continue
        rank = header_rank(path)
        if rank is None:
            junk += 1
        else:
            ranked.append((rank, path.name, path))
    ranked.sort(key=lambda item: item[:2])
    chosen = sorted((path for _, _, path in ranked[:limit]), key=lambda p: p.name)  # listed by name
    over = len(ranked) - len(chosen)
    reasons = [f"{junk} not a checkpoint by its header"] if junk else []
    reasons += [f"{over} beyond the {limit} listed (best headers first)"] if over else []
    notes = [f"{len(paths) - len(chosen)} file(s) skipped: {', '.join(reasons)}"] if reasons else []
    if unchecked:
        notes.append(f"{unchecked} file(s) not header-checked within {budget_s:g} s (ranked last, by name)")
    return chosen, notes


def list_checkpoints(
    folder: Path,
    suffixes: tuple[str, ...] = (".safetensors",),
    limit: int | None = None,
    notes: list[str] | None = None,
) -> list[CheckpointInfo]:
    """Infos of the readable checkpoints in ``folder`` (unreadable files are reported as ``error``).

    Args:
        folder: the folder (not searched recursively), or one checkpoint file (``gvcore dashboard --ckpt FILE``).
        suffixes: the file suffixes listed.
        limit: load at most this many files, chosen by :func:`rank_checkpoint_files` (headers first, so junk
            cannot hide a good checkpoint); ``None``: every file.
        notes: when given, receives ``"<folder>: N file(s) skipped: ..."`` lines (also logged).
    """
    if folder.is_file():
        candidates = [folder]
    elif folder.is_dir():
        candidates = sorted(folder.iterdir())
    else:
        return []
    paths = [
        p for p in candidates if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file()
    ]
    if limit is not None:
        paths, skipped = rank_checkpoint_files(paths, limit)
        for line in skipped:
            _LOG.warning("checkpoint folder %s: %s", folder.name, line)
            if notes is not None:
                notes.append(f"{folder.name}: {line}")
    infos = []
    for path in paths:
        try:
            infos.append(read_checkpoint_info(path))
        except Exception as err:  # a broken file must not hide the others
            infos.append({"path": str(path), "file": path.name, "label": path.stem, "error": str(err)})
    return infos


def pair_l1_gv(
    infos: list[CheckpointInfo], arch: str, scale: int, gv_weight: float | None = None
) -> tuple[CheckpointInfo | None, CheckpointInfo | None]:
    """The (pixel-loss-only, pixel+GV) checkpoint pair of an architecture and scale, or ``None`` for each missing.

    With several GV weights, ``gv_weight`` picks one; by default the largest seed-0 one listed first wins.
    """
    same = [i for i in infos if "error" not in i and i.get("arch") == arch and i.get("scale") == scale]
    base = [i for i in same if i["gv_weight"] == 0]
    gv = [i for i in same if i["gv_weight"] > 0]
    if gv_weight is not None:
        gv = [i for i in gv if abs(i["gv_weight"] - gv_weight) < 1e-12]

    def first(items: list[CheckpointInfo]) -> CheckpointInfo | None:
        return sorted(items, key=lambda i: (str(i.get("seed", "0")) != "0", i["file"]))[0] if items else None

    return first(base), first(gv)


def best_l1_arch(table: pd.DataFrame, scale: int) -> tuple[str | None, dict[str, float]]:
    """The landing page's rule: the architecture whose L1 model has the highest mean test-split PSNR at ``scale``.

    Args:
        table: a shipped evaluation table (``eval_*.csv``), mean over its images and seeds per architecture.
        scale: the scale.

    Returns:
        ``(arch, {arch: mean L1 PSNR})``; ``(None, {})`` when the table has no L1 rows at ``scale``.
    """
    if not {"arch", "loss", "scale", "psnr"} <= set(table.columns):
        return None, {}
    rows = table[(table["loss"] == "l1") & (table["scale"] == scale)]
    means = rows.groupby("arch")["psnr"].mean().sort_values(ascending=False)
    if means.empty:
        return None, {}
    return str(means.index[0]), {str(k): float(v) for k, v in means.items()}


#: the rule behind :func:`default_arch`, shown where a page preselects a pair
DEFAULT_ARCH_RULE = (
    "the L1 / L1+GV pair whose L1 model has the highest mean test-split PSNR at this scale in the shipped "
    "evaluation table (mean over images and seeds); without that table, VDSR's pair, else the first architecture "
    "with a pair (seed 0)."
)


def default_arch(infos: list[CheckpointInfo], table: pd.DataFrame, scale: int) -> str | None:
    """The architecture whose L1 / L1+GV pair every page preselects at ``scale`` (:data:`DEFAULT_ARCH_RULE`).

    Args:
        infos: the checkpoints on offer (:func:`list_checkpoints`).
        table: the shipped evaluation table of the protocol (may be empty).
        scale: the scale.
    """
    with_pair = []
    for arch in sorted({str(i.get("arch")) for i in infos if "error" not in i and i.get("scale") == scale}):
        base, gv = pair_l1_gv(infos, arch, scale)
        if base and gv:
            with_pair.append(arch)
    _, by_arch = best_l1_arch(table, scale)
    ranked = [a for a in by_arch if a in with_pair]
    if ranked:
        return ranked[0]
    with_pair.sort(key=lambda a: (not a.startswith("vdsr"), a))
    return with_pair[0] if with_pair else None


def landing_models(
    infos: list[CheckpointInfo], sweep_infos: list[CheckpointInfo], arch: str, scale: int, protocol: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The landing page's checkpoints for ``arch`` at ``scale``: ``(pair paths, λ-sweep paths)``.

    The pair is :func:`pair_l1_gv`'s (L1 first; empty unless both exist); the sweep is :func:`sweep_points` of the
    same architecture, under the standard protocol only (the sweep was trained on bicubic LR).
    """
    base, gv = pair_l1_gv(infos, arch, scale)
    pair = (str(base["path"]), str(gv["path"])) if base and gv else ()
    points = [p for p in sweep_points(sweep_infos, scale) if p.get("arch") == arch]
    sweep = tuple(str(p["path"]) for p in points) if protocol == "standard" else ()
    return pair, sweep


def sweep_points(infos: list[CheckpointInfo], scale: int) -> list[CheckpointInfo]:
    """Seed-0 sweep checkpoints at ``scale``, one per λ, sorted by λ (λ = 0 is the L1 point)."""
    points: dict[float, CheckpointInfo] = {}
    for info in infos:
        if "error" in info or info.get("scale") != scale or str(info.get("seed", "0")) != "0":
            continue
        points.setdefault(float(info["gv_weight"]), info)
    return [points[w] for w in sorted(points)]


def default_pair_labels(
    infos: list[CheckpointInfo], scale: int, table: pd.DataFrame | None = None
) -> list[str]:
    """Labels of the L1 and L1+GV checkpoints to preselect at ``scale``: :func:`default_arch`'s pair.

    ``table`` is the shipped evaluation table (the rule ranks by its L1 PSNR); without a pair, the first two
    checkpoints.
    """
    at_scale = [i for i in infos if "error" not in i and i.get("scale") == scale]
    arch = default_arch(at_scale, table if table is not None else pd.DataFrame(), scale)
    if arch is not None:
        base, gv = pair_l1_gv(at_scale, arch, scale)
        if base and gv:
            return [base["label"], gv["label"]]
    return [i["label"] for i in at_scale[:2]]


def read_eval_csv(path: Path) -> pd.DataFrame:
    """A tidy evaluation table (one row per method and image); raises ``ValueError`` on missing columns."""
    table = pd.read_csv(path)
    missing = [c for c in ("method", "image", "psnr", "ssim") if c not in table.columns]
    if missing:
        raise ValueError(f"{path.name} lacks column(s) {', '.join(missing)}")
    return table


def find_run_dirs(roots: list[Path], max_depth: int = 3) -> list[Path]:
    """Run directories (folders holding ``log.csv``) under ``roots``, at most ``max_depth`` levels down."""
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        base = root.resolve()
        for depth in range(max_depth + 1):
            pattern = "/".join(["*"] * depth + ["log.csv"])
            for log in sorted(base.glob(pattern)):
                run = log.parent.resolve()
                if (run == base or base in run.parents) and run not in found:
                    found.append(run)
    return found


def find_training_logs(roots: list[Path], results: Path) -> dict[str, Path]:
    """Training logs by display label, from run directories and the bundled reproduction.

    ``log.csv`` of run directories under ``roots`` (labelled ``parent/run``) and the bundled reproduction's
    copies in ``<results>/logs/*.csv`` (labelled ``shipped/<run>``).
    """
    logs = {f"{run.parent.name}/{run.name}": run / "log.csv" for run in find_run_dirs(roots)}
    shipped = results / "logs"
    if shipped.is_dir():
        logs |= {f"shipped/{path.stem}": path for path in sorted(shipped.glob("*.csv"))}
    return logs


def default_log_selection(labels: list[str], limit: int = 6) -> list[str]:
    """A sensible default: the first pixel-loss / +GV pair of seed 0 (same run name but ``-gv``), else the first few.

    Example:
        >>> default_log_selection(["s/a-x2-l1-s0", "s/a-x2-l1-s1", "s/b-x2-l1-s0", "s/b-x2-l1-gv-s0"])
        ['s/b-x2-l1-s0', 's/b-x2-l1-gv-s0']
    """
    for label in labels:
        if label.endswith("-s0") and "-gv" not in label:
            partner = label[: -len("-s0")] + "-gv-s0"
            if partner in labels:
                return [label, partner]
    return labels[:limit]


def read_run_log(log_path: Path, name: str | None = None) -> pd.DataFrame:
    """A training log (``log.csv`` format) as a table with numeric columns and a ``run`` column.

    Empty ``val_*`` cells become NaN; ``run`` is ``name``, by default the run directory's name.
    """
    table = pd.read_csv(log_path)
    for column in table.columns:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["run"] = name or log_path.parent.name
    return table


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json`` (``{}`` when absent or unreadable), its ``out`` shown as the run's folder name.

    ``out`` is where the run was written on the machine that trained it: a page shows the folder's name, not
    the server's path.
    """
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(config, dict):
        return {}
    if config.get("out"):
        config["out"] = Path(str(config["out"])).name
    return config


#: where a selectable checkpoint comes from, in display order (the ``group`` of :func:`selectable_checkpoints`).
SOURCE_GROUPS: tuple[str, ...] = ("bundled", "runs", "checkpoint folders")


def checkpoint_degradation(info: CheckpointInfo) -> str:
    """The LR degradation a checkpoint was trained on: its ``degradation`` field, ``"standard"`` when absent.

    Example:
        >>> checkpoint_degradation({"degradation": "official"}), checkpoint_degradation({"degradation": None})
        ('official', 'standard')
    """
    return str(info.get("degradation") or "standard")


def run_checkpoint_infos(roots: list[Path]) -> list[CheckpointInfo]:
    """``last.safetensors`` of every run directory under ``roots`` (:func:`find_run_dirs`), as checkpoint infos.

    ``config.json`` (the resolved training config) wins over the checkpoint's metadata for ``label``, ``scale``
    and ``degradation`` (its ``protocol``); a run without a checkpoint yet is skipped, an unreadable one is
    listed with ``error``. Each info gets ``group = "runs"`` and ``source`` = ``parent/run``.
    """
    infos: list[CheckpointInfo] = []
    for run in find_run_dirs(roots):
        checkpoint = run / "last.safetensors"
        if not checkpoint.is_file():
            continue
        source = f"{run.parent.name}/{run.name}"
        try:
            info = read_checkpoint_info(checkpoint)
        except Exception as err:  # a broken run must not hide the others
            infos.append(
                {
                    "path": str(checkpoint),
                    "label": run.name,
                    "group": "runs",
                    "source": source,
                    "error": str(err),
                }
            )
            continue
        config = read_run_config(run)
        if str(config.get("scale", "")).isdigit():
            info["scale"] = int(config["scale"])
        if config.get("protocol"):
            info["degradation"] = str(config["protocol"])
        own = info.get("label") if info.get("label") != checkpoint.stem else None  # stem: no label stored
        info["label"] = str(config.get("label") or own or run.name)
        infos.append(info | {"group": "runs", "source": source})
    return infos


def folder_checkpoint_infos(folders: list[Path], notes: list[str] | None = None) -> list[CheckpointInfo]:
    """The checkpoints of each folder: :data:`FOLDER_SUFFIXES`, at most :data:`MAX_FOLDER_CHECKPOINTS` each.

    Not recursive (:func:`list_checkpoints`); gvcore and foreign checkpoints alike. The files loaded are the
    best by a cheap header check (:func:`rank_checkpoint_files`), so junk cannot hide a good checkpoint;
    ``notes`` (when given) receives how many files were skipped per folder.

    Labelled by their metadata ``label`` (else the file name), with ``group = "checkpoint folders"`` and
    ``source`` = the folder's name; a folder listed twice is read once.
    """
    infos: list[CheckpointInfo] = []
    for folder in _distinct(folders):
        infos += [
            i
            | {
                "group": "checkpoint folders",
                "source": folder.name if folder.is_dir() else folder.parent.name,
            }
            for i in list_checkpoints(folder, FOLDER_SUFFIXES, MAX_FOLDER_CHECKPOINTS, notes)
        ]
    return infos


def _distinct(folders: list[Path]) -> list[Path]:
    """``folders`` without repeats of one folder (by resolved path), in order: a folder listed twice is read once."""
    seen: set[Path] = set()
    distinct = []
    for folder in folders:
        if folder.resolve() not in seen:
            seen.add(folder.resolve())
            distinct.append(folder)
    return distinct


def published_checkpoint_infos(folders: list[Path]) -> list[CheckpointInfo]:
    """The published models (:mod:`gvcore.zoo.registry`) in ``folders``: shipped, then fetched ones; others are skipped.

    ``folders`` are typically ``<assets>/checkpoints/published`` and :func:`gvcore.zoo.registry.zoo_dir`. Each info has
    ``published`` True, ``source`` = the folder's name and the training as published in ``loss_name``.
    """
    infos: list[CheckpointInfo] = []
    for folder in _distinct(folders):
        infos += [
            i | {"source": folder.name}
            for i in list_checkpoints(folder, limit=MAX_FOLDER_CHECKPOINTS)
            if i.get("published")
        ]
    return infos


def offered_under(info: CheckpointInfo, protocol: str) -> bool:
    """Whether a page scores ``info`` under ``protocol``: trained on its degradation, or on a blind one.

    Example:
        >>> offered_under({"degradation": "blind"}, "official"), offered_under({"degradation": None}, "official")
        (True, False)
    """
    from gvcore.checkpoint.meta import BLIND_DEGRADATION

    return checkpoint_degradation(info) in (protocol, BLIND_DEGRADATION)


def selectable_checkpoints(protocol: str, groups: dict[str, list[CheckpointInfo]]) -> list[CheckpointInfo]:
    """The checkpoints a page may offer under ``protocol``, in group order.

    Offered: readable, of known scale, trained on the protocol's degradation (a model is only scored on the LR
    its training LR was made like), or on a blind degradation (:func:`offered_under`; Real-ESRGAN), whose choice
    then says ``(blind degradation)``. A published model's choice ends in ``· published``.

    Args:
        protocol: the page's protocol (``"standard"`` or ``"official"``).
        groups: :data:`SOURCE_GROUPS` name -> infos (bundled: :func:`list_checkpoints`; runs:
            :func:`run_checkpoint_infos`; checkpoint folders: :func:`folder_checkpoint_infos`).

    Returns:
        Infos with ``group`` and a ``choice``: the display label, unique across all groups (a repeated label
        gets `` [source/file]`` appended).

    Example:
        >>> a = {"label": "x", "scale": 2, "file": "a.safetensors", "source": "r"}
        >>> b = {"label": "x", "scale": 2, "file": "b.safetensors", "source": "run1", "degradation": "standard"}
        >>> c = {"label": "y", "scale": 2, "file": "c.safetensors", "source": "f", "degradation": "official"}
        >>> [i["choice"] for i in selectable_checkpoints("standard", {"bundled": [a], "runs": [b, c]})]
        ['x', 'x [run1/b.safetensors]']
    """
    chosen: list[CheckpointInfo] = []
    taken: set[str] = set()
    for group in sorted(
        groups, key=lambda g: SOURCE_GROUPS.index(g) if g in SOURCE_GROUPS else len(SOURCE_GROUPS)
    ):
        for info in groups[group]:
            if "error" in info or not info.get("scale") or not offered_under(info, protocol):
                continue
            choice = str(info["label"])
            if info.get("published"):
                choice += " · published"
            if checkpoint_degradation(info) != protocol:
                choice += " (blind degradation)"
            if choice in taken:
                choice = f"{choice} [{info.get('source', group)}/{info.get('file', '')}]"
            taken.add(choice)
            chosen.append(info | {"group": group, "choice": choice})
    return chosen


def sources_signature(folders: list[Path], run_roots: list[Path]) -> str:
    """A cache key of every file the listings read, which changes when a run appears, saves or is relabelled.

    Names and modification times of the checkpoints (:data:`FOLDER_SUFFIXES`) in ``folders`` and of ``last.safetensors`` and
    ``config.json`` of the runs under ``run_roots``, so the pages see a new run without a server restart.
    """
    parts = [f"{[str(f) for f in folders]}|{[str(r) for r in run_roots]}"]
    files = [
        p
        for folder in folders
        if folder.is_dir()
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in FOLDER_SUFFIXES and not p.name.startswith(".")
    ]
    files += [run / name for run in find_run_dirs(run_roots) for name in ("last.safetensors", "config.json")]
    for path in files:
        with contextlib.suppress(OSError):
            parts.append(f"{path}:{path.stat().st_mtime_ns}")
    return "\n".join(parts)


def find_paper_markdown() -> Path | None:
    """``PAPER.md``: ``docs/PAPER.md``, ``PAPER.md`` in the repository, or the shared copy beside it."""
    for candidate in (
        REPO_ROOT / "docs" / "PAPER.md",
        REPO_ROOT / "PAPER.md",
        REPO_ROOT.parent / "shared" / "PAPER.md",
    ):
        if candidate.is_file():
            return candidate
    return None


def paper_table(text: str) -> pd.DataFrame:
    r"""Parse PAPER.md's results table into tidy rows ``set, scale, arch, loss, psnr, ssim``.

    Example:
        >>> md = "| Set | Scale | VDSR | VDSR+GV |\n|---|---|---|---|\n| Set5 | 2 | 30.38/0.9100 | 31.21/0.9171 |"
        >>> paper_table(md)[["arch", "loss", "psnr"]].values.tolist()
        [['VDSR', 'L2', 30.38], ['VDSR', 'L2+GV', 31.21]]
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    header: list[str] | None = None
    rows = []
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == ["Set", "Scale"]:
            header = cells
            continue
        if header is None or set("".join(cells)) <= set("-: "):
            continue
        if len(cells) != len(header):
            header = None
            continue
        for name, cell in zip(header[2:], cells[2:]):
            match = re.fullmatch(r"([\d.]+)\s*/\s*([\d.]+)", cell.replace("*", ""))
            if not match:
                continue
            arch, _, gv = name.partition("+")
            rows.append(
                {
                    "set": cells[0],
                    "scale": int(cells[1]),
                    "arch": arch,
                    "loss": "L2+GV" if gv else "L2",
                    "psnr": float(match.group(1)),
                    "ssim": float(match.group(2)),
                }
            )
    return pd.DataFrame(rows, columns=["set", "scale", "arch", "loss", "psnr", "ssim"])
