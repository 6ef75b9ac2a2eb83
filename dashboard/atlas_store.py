"""The structure atlas kept on disk: built once per set of inputs (:mod:`dashboard.precomputed`), read on revisits.

:func:`atlas_key` names an atlas by what defines it: the checkpoints' contents, the images (their contents for the
bundled split; name, size and modification time in a server folder, which may be large), the scale, protocol,
ranking settings and inference tile. :func:`to_entry` / :func:`from_entry` turn an
:class:`gvcore.eval.atlas.AtlasResult` into plain arrays (the crops) and JSON (regions, settings, the per-image table
as CSV) and back, so nothing is pickled. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dashboard import precomputed
from gvcore.eval.atlas import AtlasRegion, AtlasResult

__all__ = ["KIND", "atlas_key", "data_signature", "from_entry", "to_entry"]

KIND = "atlas"


def data_signature(data: str) -> list[Any]:
    """What identifies the images of ``data``.

    ``[name, content digest]`` per bundled test image, else ``[name, file name, size, mtime]`` per HR (and LR)
    file of the folder (a server folder may be large: its files are not read to name the atlas).
    """
    if data == "bundled":
        from gvcore.data.bundled import bundled_image_paths

        return [[p.stem, precomputed.content_digest(p)] for p in bundled_image_paths("test")]
    from gvcore.data.sources import resolve_images

    rows: list[Any] = []
    for source in resolve_images(data, "test"):
        for part in (source.hr_path, *(source.lr_paths[s] for s in sorted(source.lr_paths))):
            stat = Path(part).stat()
            rows.append([source.name, Path(part).name, stat.st_size, stat.st_mtime_ns])
    return rows


def atlas_key(
    checkpoints: Sequence[str], data: str, scale: int, protocol: str, settings: Sequence[Any], tile: int
) -> str:
    """The store key of the atlas of ``checkpoints`` on ``data`` (module docstring)."""
    inputs = {
        "checkpoints": [precomputed.content_digest(p) for p in checkpoints],
        "data": data_signature(data),
        "scale": int(scale),
        "protocol": protocol,
        "settings": list(settings),
        "tile": int(tile),
    }
    return precomputed.entry_key(KIND, inputs)


def to_entry(result: AtlasResult) -> precomputed.Entry:
    """An atlas as arrays (``crop/<ranking>/<rank>/<method index>``) and a JSON-able document."""
    arrays: dict[str, np.ndarray] = {}
    regions: dict[str, list[dict[str, Any]]] = {}
    for ranking, items in result.regions.items():
        regions[ranking] = []
        for rank, item in enumerate(items):
            names = list(item.crops)
            for index, name in enumerate(names):
                arrays[f"crop/{ranking}/{rank}/{index}"] = item.crops[name]
            regions[ranking].append(
                {
                    "score": item.score,
                    "image": item.image,
                    "y": item.y,
                    "x": item.x,
                    "size": item.size,
                    "hr_variance": item.hr_variance,
                    "deficits": item.deficits,
                    "crops": names,
                }
            )
    meta = {
        "scale": result.scale,
        "protocol": result.protocol,
        "direction": result.direction,
        "region": result.region,
        "methods": result.methods,
        "pair": list(result.pair) if result.pair else None,
        "images": result.images,
        "regions": regions,
        "table": precomputed.frame_to_text(result.table),
    }
    return arrays, meta


def from_entry(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> AtlasResult:
    """The :class:`AtlasResult` that :func:`to_entry` stored."""
    regions = {
        ranking: [
            AtlasRegion(
                ranking=ranking,
                score=float(item["score"]),
                image=str(item["image"]),
                y=int(item["y"]),
                x=int(item["x"]),
                size=int(item["size"]),
                hr_variance=float(item["hr_variance"]),
                deficits={str(k): float(v) for k, v in item["deficits"].items()},
                crops={name: arrays[f"crop/{ranking}/{rank}/{i}"] for i, name in enumerate(item["crops"])},
            )
            for rank, item in enumerate(items)
        ]
        for ranking, items in meta["regions"].items()
    }
    pair = meta.get("pair")
    return AtlasResult(
        scale=int(meta["scale"]),
        protocol=meta["protocol"],
        direction=meta["direction"],
        region=int(meta["region"]),
        methods=list(meta["methods"]),
        pair=(str(pair[0]), str(pair[1])) if pair else None,
        images=list(meta["images"]),
        regions=regions,
        table=precomputed.frame_from_text(meta["table"]),
    )
