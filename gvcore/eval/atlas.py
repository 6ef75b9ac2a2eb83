"""The structure atlas: where, across a data set, outputs lose gradient variance, and where a checkpoint gives it back.

For every image, :func:`build_atlas` runs the one scoring path (:func:`gvcore.eval.scoring.score_image`: the
protocol's LR synthesis, baseline, 8-bit policy and metrics) and takes the patch-variance maps of HR and every
output (:func:`gvcore.variance.variance_maps`, p = 8, gray, Sobel -- the maps behind ``var_gx``/``var_gy``).
The maps are averaged over square *regions* of ``region x region`` patches (non-overlapping; 4 x 4 patches =
32 x 32 HR pixels by default), and every region gets four scores:

- ``worst``: the variance deficit ``V_HR - V_out``, averaged over the checkpoints (the baseline's when there
  is no checkpoint): where structure is lost;
- ``most_recovered``: ``V_B - V_A`` for a pair of checkpoints ``(A, B)`` (e.g. L1 and L1+GV): where ``B``
  gives back the most variance relative to ``A``;
- ``least_recovered``: ``V_A - V_B``: where ``B`` gives back the least (or loses variance against ``A``),
  among regions where structure was lost (``A``'s or ``B``'s deficit at least :data:`MIN_LOST_VARIANCE`;
  flat regions, where neither loses anything, would otherwise fill this ranking with zeros);
- ``overshoot``: ``V_B - V_HR`` where positive: where ``B`` adds more variance than HR has.

Within one image, a ranking never keeps two regions that touch (non-maximum suppression, :func:`_push_regions`).
Each ranking keeps its ``top_k`` regions across the data set in a bounded min-heap (:class:`TopK`), so memory
is ``O(top_k)`` whatever the number of images; a kept region carries its aligned crops (HR, baseline and each
checkpoint). Filters: images by name, a range of the ``worst`` deficit, and the gradient direction (``gx``,
``gy`` or ``both`` = their mean). The per-image table holds the scoring path's rows (variance ratio, GV
distance, PSNR, SSIM, ...), never recomputed here, plus the location of each output's worst region.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from gvcore._validation import check_choice, check_positive_int
from gvcore.data.layouts import ImageSource
from gvcore.data.sources import load_pairs, resolve_images
from gvcore.eval.evaluate import EVAL_COLUMNS, load_for_scoring
from gvcore.eval.scoring import score_image
from gvcore.protocol import Protocol, ProtocolLike
from gvcore.variance import variance_maps

__all__ = [
    "DIRECTIONS",
    "MAX_CHECKPOINTS",
    "MAX_TOP_K",
    "MIN_LOST_VARIANCE",
    "RANKINGS",
    "AtlasRegion",
    "AtlasResult",
    "Direction",
    "TopK",
    "build_atlas",
    "load_checkpoints",
    "regions_frame",
]

Direction = Literal["gx", "gy", "both"]
#: gradient directions a ranking can use (``both`` = mean of the two variance maps).
DIRECTIONS: tuple[str, ...] = ("gx", "gy", "both")
#: the rankings, in display order (module docstring).
RANKINGS: tuple[str, ...] = ("worst", "most_recovered", "least_recovered", "overshoot")
#: smallest deficit (``V_HR - V_out``, gray Sobel patch variance of [0, 1] images) for a region to count as one
#: where structure was lost, in the ``least_recovered`` ranking
MIN_LOST_VARIANCE = 0.01
#: at most this many checkpoints per atlas (each is run on every image).
MAX_CHECKPOINTS = 8
#: at most this many regions per ranking (each keeps its crops in memory).
MAX_TOP_K = 256
#: patch side of the variance maps (the paper's p = 8, as ``var_gx``/``var_gy``).
PATCH_SIZE = 8

ProgressCallback = Callable[[int, int, str], None]


class TopK:
    """The ``k`` largest items pushed so far, kept in a min-heap of at most ``k`` entries (streaming top-k).

    Ties keep the item pushed first, so the result does not depend on how pushes are batched.

    Example:
        >>> top = TopK(2)
        >>> for score, item in [(1.0, "a"), (3.0, "b"), (2.0, "c"), (3.0, "d")]:
        ...     _ = top.push(score, item)
        >>> top.items()
        [(3.0, 'b'), (3.0, 'd')]
    """

    def __init__(self, k: int) -> None:
        """Keep the ``k`` (>= 1) largest."""
        self.k = check_positive_int("k", k)
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Number of items kept (at most ``k``)."""
        return len(self._heap)

    def would_keep(self, score: float) -> bool:
        """Whether an item with ``score`` pushed now would be kept (a cheap test before building the item)."""
        return len(self._heap) < self.k or score > self._heap[0][0]

    def push(self, score: float, item: Any) -> bool:
        """Offer an item; returns whether it was kept (it may be evicted by later, larger ones)."""
        if not self.would_keep(score):
            return False
        entry = (float(score), -next(self._seq), item)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heapreplace(self._heap, entry)
        return True

    def items(self) -> list[tuple[float, Any]]:
        """``(score, item)`` pairs, largest score first (ties: first pushed first)."""
        return [(score, item) for score, _, item in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]


@dataclass(frozen=True)
class AtlasRegion:
    """One ranked region: where it is, its score, each output's variance deficit and (optionally) its crops.

    ``y``, ``x``, ``size`` are in HR pixels (top-left corner and side; the region is ``size x size``).
    ``deficits`` maps each output to ``V_HR - V_out`` (mean over the region's patches, in the ranking's
    direction); ``hr_variance`` is ``V_HR`` there. ``crops`` maps ``HR``, the baseline and each checkpoint to
    ``(size, size, 3)`` uint8 pixels (display only), or is empty.
    """

    ranking: str
    score: float
    image: str
    y: int
    x: int
    size: int
    hr_variance: float
    deficits: dict[str, float]
    crops: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AtlasResult:
    """What :func:`build_atlas` returns: the settings, the ranked regions and the per-image table."""

    scale: int
    protocol: Protocol
    direction: Direction
    region: int
    methods: list[str]
    pair: tuple[str, str] | None
    images: list[str]
    regions: dict[str, list[AtlasRegion]]
    table: Any  # pandas.DataFrame: evaluation columns + worst_y, worst_x, worst_size, worst_deficit


def load_checkpoints(
    checkpoints: Sequence[str | Path], scale: int, protocol: Protocol, device: str = "cpu"
) -> tuple[dict[str, nn.Module], dict[str, dict[str, Any]]]:
    """Load 1 to :data:`MAX_CHECKPOINTS` checkpoints as ``gvcore eval`` does, labelled as in its table.

    Returns:
        ``(models, infos)``: label -> model (eval mode) and label -> ``{arch, loss, gv_weight, seed, path}``.

    Raises:
        ValueError: no or too many checkpoints, a checkpoint of another scale, or one trained on another
            protocol's degradation; :class:`gvcore.CheckpointError` for unreadable or hostile files.
    """
    _check_count(len(checkpoints))
    protocol = Protocol.parse(protocol)
    models: dict[str, nn.Module] = {}
    infos: dict[str, dict[str, Any]] = {}
    for loaded in load_for_scoring([Path(raw) for raw in checkpoints], scale, protocol, device=device):
        info = {k: v for k, v in loaded.info.items() if k not in ("label", "iteration")}
        models[loaded.info["label"]] = loaded.model
        infos[loaded.info["label"]] = {**info, "path": str(loaded.path)}
    return models, infos


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_CHECKPOINTS:
        raise ValueError(f"the atlas takes 1 to {MAX_CHECKPOINTS} checkpoints; got {count}")


def _check_settings(top_k: int, region: int, deficit_range: tuple[float, float] | None) -> None:
    check_positive_int("top_k", top_k)
    if top_k > MAX_TOP_K:
        raise ValueError(f"top_k must be at most {MAX_TOP_K} (each kept region holds its crops); got {top_k}")
    check_positive_int("region", region)
    if region > 64:
        raise ValueError(f"region must be at most 64 patches; got {region}")
    if deficit_range is not None:
        low, high = (float(v) for v in deficit_range)
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ValueError(f"deficit_range must be (low, high) with low <= high; got {deficit_range!r}")


def _direction_map(x: torch.Tensor, direction: str) -> np.ndarray:
    """``(h, w)`` float64 patch-variance map of one ``(1, 3, H, W)`` image in ``direction``."""
    vx, vy = variance_maps(x.float(), patch_size=PATCH_SIZE)
    maps = {"gx": vx, "gy": vy}
    chosen = maps[direction] if direction in maps else 0.5 * (vx + vy)
    return chosen[0, 0].double().numpy()


def _region_means(values: np.ndarray, region: int) -> np.ndarray:
    """Means over non-overlapping ``region x region`` windows of an ``(h, w)`` map (the remainder is dropped)."""
    h, w = values.shape[0] // region * region, values.shape[1] // region * region
    return values[:h, :w].reshape(h // region, region, w // region, region).mean(axis=(1, 3))


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8, for the crops only."""
    return x[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _scores(
    variance: dict[str, np.ndarray], models: Sequence[str], baseline: str, pair: tuple[str, str] | None
) -> dict[str, np.ndarray]:
    """Per-region scores of every ranking (module docstring); NaN where a region is not eligible."""
    hr = variance["HR"]
    ranked = list(models) or [baseline]
    scores = {"worst": np.mean([hr - variance[m] for m in ranked], axis=0)}
    if pair is not None:
        base, treated = variance[pair[0]], variance[pair[1]]
        scores["most_recovered"] = treated - base
        lost = np.maximum(hr - base, hr - treated) >= MIN_LOST_VARIANCE
        scores["least_recovered"] = np.where(lost, base - treated, np.nan)
        over = treated - hr
        scores["overshoot"] = np.where(over > 0, over, np.nan)
    return scores


def _image_rows(
    name: str,
    scored: Any,
    variance: dict[str, np.ndarray],
    size: int,
    info: Mapping[str, Mapping[str, Any]],
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """The scoring path's rows of one image plus each output's worst region (in HR pixels)."""
    rows = []
    for scored_row in scored.rows:
        method = scored_row["method"]
        row: dict[str, Any] = {**base, "image": name, **scored_row}
        row.update(
            {k: v for k, v in info.get(method, {}).items() if k in ("arch", "loss", "gv_weight", "seed")}
        )
        deficit = variance["HR"] - variance[method]
        r, c = np.unravel_index(int(np.argmax(deficit)), deficit.shape)
        row |= {"worst_y": int(r) * size, "worst_x": int(c) * size, "worst_size": size}
        row["worst_deficit"] = float(deficit[r, c])
        rows.append(row)
    return rows


def _resolve_pair(labels: list[str], pair: tuple[str, str] | None) -> tuple[str, str] | None:
    """The recovery pair: ``pair`` checked against ``labels``, default their first two (none with one model)."""
    if pair is None and len(labels) >= 2:
        pair = (labels[0], labels[1])
    if pair is not None:
        unknown = [p for p in pair if p not in labels]
        if unknown or pair[0] == pair[1]:
            raise ValueError(f"pair must name two different models of {labels}; got {pair!r}")
    return pair


def _chosen_images(sources: list[ImageSource], images: Iterable[str] | None) -> list[ImageSource]:
    """``sources`` limited to the names in ``images`` (all when ``None``); unknown names are an error."""
    if images is None:
        return sources
    wanted = list(dict.fromkeys(images))
    known = {s.name for s in sources}
    missing = [n for n in wanted if n not in known]
    if missing or not wanted:
        raise ValueError(
            f"images: {', '.join(missing) or 'none chosen'} not in the data set ({', '.join(sorted(known))})"
        )
    return [s for s in sources if s.name in wanted]


def _eligible(worst: np.ndarray, deficit_range: tuple[float, float] | None) -> np.ndarray:
    """Regions whose ``worst`` deficit lies in ``deficit_range`` (every region when ``None``)."""
    if deficit_range is None:
        return np.ones_like(worst, dtype=bool)
    return (worst >= deficit_range[0]) & (worst <= deficit_range[1])


def _push_regions(
    heap: TopK,
    ranking: str,
    values: np.ndarray,
    image: str,
    size: int,
    variance: Mapping[str, np.ndarray],
    methods: list[str],
    pixels: Mapping[str, np.ndarray],
) -> None:
    """Offer one image's regions (``values``, NaN = not eligible) to one ranking's heap, none touching another.

    Non-maximum suppression within the image: regions are offered best first, and one that touches (shares an
    edge or a corner with) a better region of this image already offered is skipped, so a ranking never lists a
    run of neighbouring tiles along one edge or text line. Ties keep the earlier region in row-major order.
    """
    taken: list[tuple[int, int]] = []
    flats = np.flatnonzero(~np.isnan(values))
    order = sorted(flats, key=lambda f: (-float(values.flat[f]), int(f)))
    for flat in order:
        r, c = divmod(int(flat), values.shape[1])
        if any(abs(r - tr) <= 1 and abs(c - tc) <= 1 for tr, tc in taken):
            continue
        if not heap.would_keep(values[r, c]):
            break  # best first: no later region of this image would be kept either
        taken.append((r, c))
        y, x = r * size, c * size
        heap.push(
            float(values[r, c]),
            AtlasRegion(
                ranking=ranking,
                score=float(values[r, c]),
                image=image,
                y=y,
                x=x,
                size=size,
                hr_variance=float(variance["HR"][r, c]),
                deficits={m: float(variance["HR"][r, c] - variance[m][r, c]) for m in methods if m != "HR"},
                crops={m: p[y : y + size, x : x + size].copy() for m, p in pixels.items()},
            ),
        )


def build_atlas(
    models: Mapping[str, nn.Module],
    data: str | Path,
    scale: int,
    protocol: ProtocolLike = "standard",
    *,
    infos: Mapping[str, Mapping[str, Any]] | None = None,
    pair: tuple[str, str] | None = None,
    top_k: int = 24,
    direction: Direction = "both",
    region: int = 4,
    images: Iterable[str] | None = None,
    deficit_range: tuple[float, float] | None = None,
    keep_crops: bool = True,
    tile: int = 256,
    progress: ProgressCallback | None = None,
) -> AtlasResult:
    """Rank the regions of a data set by variance deficit and recovery (module docstring).

    Args:
        models: 1 to :data:`MAX_CHECKPOINTS` models, label -> model (``(1, 3, h, w) -> (1, 3, sh, sw)``).
        data: ``"bundled"`` (its test split), a folder (any layout ``gvcore eval`` reads) or an image file.
        scale: SR factor.
        protocol: ``"standard"`` or ``"official"`` (:mod:`gvcore.eval.scoring`).
        infos: label -> checkpoint info (``arch``, ``loss``, ``gv_weight``, ``seed``) for the table.
        pair: ``(A, B)`` labels for the recovery rankings; default the first two models (none with one model).
        top_k: regions kept per ranking (1 to :data:`MAX_TOP_K`).
        direction: ``"gx"``, ``"gy"`` or ``"both"``.
        region: region side in patches (8 HR pixels each).
        images: only these image names (file stems); unknown names are an error.
        deficit_range: keep only regions whose ``worst`` deficit lies in ``[low, high]``.
        keep_crops: keep each ranked region's aligned crops (for a gallery).
        tile: tiled inference in LR pixels.
        progress: called as ``progress(done, total, image_name)`` after each image.

    Returns:
        :class:`AtlasResult`.

    Raises:
        ValueError: a bad setting (naming it), no or too many models, unknown image names or pair labels, and
            everything :func:`gvcore.data.sources.resolve_images` / :func:`gvcore.data.sources.load_pairs` refuse.
    """
    import pandas as pd

    _check_count(len(models))
    check_positive_int("scale", scale)
    protocol = Protocol.parse(protocol)
    check_choice("direction", direction, DIRECTIONS)
    _check_settings(top_k, region, deficit_range)
    labels = list(models)
    pair = _resolve_pair(labels, pair)
    sources = _chosen_images(resolve_images(data, "test"), images)
    baseline = Protocol.parse(protocol).baseline
    heaps = {name: TopK(top_k) for name in RANKINGS if pair is not None or name == "worst"}
    rows: list[dict[str, Any]] = []
    base_row = {"scale": scale, "protocol": protocol}
    for done, source in enumerate(sources, start=1):
        lr, hr = load_pairs([source], scale, protocol)[0].as_float()
        scored = score_image(hr, scale, protocol, models, lr=lr, tile=tile)
        outputs = {"HR": scored.hr, **scored.outputs}
        maps = {name: _direction_map(x, direction) for name, x in outputs.items()}
        side = min(region, *maps["HR"].shape)
        variance = {name: _region_means(m, side) for name, m in maps.items()}
        size = side * PATCH_SIZE
        rows.extend(_image_rows(source.name, scored, variance, size, infos or {}, base_row))
        scores = _scores(variance, labels, baseline, pair)
        eligible = _eligible(scores["worst"], deficit_range)
        pixels = {name: _to_uint8(x) for name, x in outputs.items()} if keep_crops else {}
        for ranking, heap in heaps.items():
            values = np.where(eligible, scores[ranking], np.nan)
            _push_regions(heap, ranking, values, source.name, size, variance, list(outputs), pixels)
        if progress is not None:
            progress(done, len(sources), source.name)
    extra = ["worst_y", "worst_x", "worst_size", "worst_deficit"]
    table = pd.DataFrame(rows, columns=[*EVAL_COLUMNS, *extra])
    table["seed"] = table["seed"].astype("Int64")
    return AtlasResult(
        scale=scale,
        protocol=protocol,
        direction=direction,
        region=region,
        methods=[baseline, *labels],
        pair=pair,
        images=[s.name for s in sources],
        regions={name: [item for _, item in heap.items()] for name, heap in heaps.items()},
        table=table,
    )


def regions_frame(result: AtlasResult, rankings: Sequence[str] | None = None) -> Any:
    """The ranked regions as a table: ``ranking, rank, image, y, x, size, score, hr_variance, deficit_<method>``.

    Args:
        result: from :func:`build_atlas`.
        rankings: which rankings (default all that were computed), each in rank order.
    """
    import pandas as pd

    chosen = list(result.regions) if rankings is None else list(rankings)
    for name in chosen:
        check_choice("ranking", name, tuple(result.regions))
    columns = ["ranking", "rank", "image", "y", "x", "size", "score", "hr_variance"]
    columns += [f"deficit_{m}" for m in result.methods]
    records = []
    for name in chosen:
        for rank, item in enumerate(result.regions[name], start=1):
            record = {
                k: getattr(item, k) for k in ("ranking", "image", "y", "x", "size", "score", "hr_variance")
            }
            record["rank"] = rank
            record |= {f"deficit_{m}": item.deficits.get(m, math.nan) for m in result.methods}
            records.append(record)
    return pd.DataFrame(records, columns=columns)
