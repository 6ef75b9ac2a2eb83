"""The ``gvcore`` command line: ``train``, ``eval``, ``reproduce``, ``atlas``, ``zoo``, thin wrappers over library calls.

Other packages add commands through the ``gvcore.commands`` entry-point group (:mod:`gvcore.commands`): the
dashboard adds ``dashboard``, ``precompute`` and ``report`` (:mod:`dashboard.commands`); gvcore never imports
the dashboard.

Bad input (missing or empty data folder, no images, images smaller than the crop, unknown architecture or
loss, a checkpoint of another scale, an unwritable output) ends with exit code 2 and one line on stderr,
``gvcore <command>: error: <what is wrong>``; nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gvcore.commands import add_registered

__all__ = ["build_parser", "main"]


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train", help="train an SR model", description="Train an SR model into a run directory."
    )
    p.add_argument("--arch", required=True, help="model name (vdsr, vdsr-lite, edsr, edsr-lite, espcn)")
    p.add_argument("--scale", type=int, required=True, help="SR factor (2, 3, 4)")
    p.add_argument("--loss", default="l1", help="loss recipe: l1, mse, l1+gv, mse+gv (default l1)")
    p.add_argument("--data", default="bundled", help="HR image folder, DIV2K folder, or 'bundled' (default)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=16, help="global batch per step (default 16)")
    p.add_argument("--crop", type=int, default=64, help="HR patch side, a multiple of --scale (default 64)")
    p.add_argument("--out", required=True, help="run directory (config.json, log.csv, last.safetensors)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and augmentation")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument(
        "--gv-weight", type=float, default=None, help="lambda (default: 0.01 with mse, 0.03 with l1)"
    )
    p.add_argument("--gv-patch-size", type=int, default=8, help="GV tile side (default 8)")
    p.add_argument("--gv-distance", default="mse", help="GV distance: mse (paper), l1, charbonnier")
    p.add_argument(
        "--protocol", default="standard", help="LR synthesis: standard (bicubic) or official (bilinear)"
    )
    p.add_argument("--optimizer", default="auto", help="auto (SGD for VDSR, Adam otherwise), adam, sgd")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.1 SGD, 5e-4 Adam)")
    p.add_argument("--schedule", default="auto", help="auto, constant, multistep (x0.1 at 1/3, 2/3), cosine")
    p.add_argument(
        "--grad-clip", type=float, default=None, help="gradient-norm clip (default 0.4 SGD, off Adam)"
    )
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay (default 1e-4 SGD, 0 Adam)")
    p.add_argument("--amp", default="auto", help="CUDA autocast: auto (bf16, else fp16), bf16, fp16, off")
    p.add_argument("--log-every", type=int, default=10, help="steps per log.csv row (default 10)")
    p.add_argument("--val-every", type=int, default=100, help="steps per validation, 0 = never (default 100)")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps per checkpoint (default 100)")
    p.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="also keep <out>/snapshots/step_000500.safetensors-style checkpoints at every --ckpt-every",
    )
    p.add_argument(
        "--val-data", default=None, help="validation images (default: bundled test split), or none"
    )
    p.add_argument("--val-images", type=int, default=4, help="validation images used (default 4)")
    p.add_argument(
        "--val-crop", type=int, default=128, help="HR centre crop of validation images (default 128)"
    )
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--label", default=None, help="display name stored in the checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)  # testing: simulated kill
    p.set_defaults(func=_train)


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", help="evaluate checkpoints", description="Score HR, bicubic and checkpoints.")
    p.add_argument(
        "--ckpt",
        action="append",
        default=[],
        help="checkpoint file, or a folder of snapshots (every .safetensors/.pth/.pt in it); repeat for several",
    )
    p.add_argument(
        "--data",
        default="bundled",
        help="image folder (plain HR, DIV2K or BasicSR benchmark layout), image, or 'bundled' (test split)",
    )
    p.add_argument("--hr", default=None, help="HR image folder paired by stem with --lr (instead of --data)")
    p.add_argument("--lr", default=None, help="LR image folder: given LR files, used as they are")
    p.add_argument(
        "--cache",
        nargs="?",
        const="",
        default=None,
        help="results database (SQLite): reuse stored per-image results, store new ones "
        "(given without a file: $GVLAB_RESULTS_DB, else runs/results.sqlite)",
    )
    p.add_argument("--scale", type=int, default=None, help="SR factor (default: the first checkpoint's)")
    p.add_argument("--protocol", default="standard", help="standard (BasicSR) or official (the GV code's)")
    p.add_argument("--csv", default=None, help="write the tidy per-image table here")
    p.add_argument("--lr-only", action="store_true", help="the images are LR inputs without HR")
    p.add_argument("--tile", type=int, default=256, help="tile side in LR pixels (default 256)")
    p.add_argument("--overlap", type=int, default=16, help="tile overlap in LR pixels (default 16)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (CUDA if available)")
    p.add_argument(
        "--tile-batch", type=int, default=None, help="tiles per forward call (default: 1 on CPU, 8 on CUDA)"
    )
    p.add_argument("--per-image", action="store_true", help="print the per-image table too")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_eval)


def _add_reproduce(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reproduce", help="the bundled reproduction", description="Train the grid, evaluate, write assets/."
    )
    p.add_argument("--out", default="assets", help="assets folder (checkpoints/, results/)")
    p.add_argument("--work", default=None, help="run directories (default runs/reproduce, or a temp dir)")
    p.add_argument("--smoke", action="store_true", help="a few steps of the same pipeline, into a temp dir")
    p.add_argument("--jobs", type=int, default=2, help="trainings run in parallel (default 2)")
    p.add_argument(
        "--verify", action="store_true", help="re-evaluate shipped checkpoints against shipped CSVs"
    )
    p.add_argument(
        "--reevaluate",
        action="store_true",
        help="re-score the shipped checkpoints on today's test split and metrics (failed-seed rule applied once)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--tier",
        choices=("lite", "full"),
        default="lite",
        help="lite: the 2-core CPU grid (default); full: EDSR-baseline and VDSR on a GPU (gvcore.reproduce.full)",
    )
    p.add_argument("--device", default="cuda", help="--tier full: where to train (default cuda)")
    p.add_argument(
        "--score-only", action="store_true", help="--tier full: only score the shipped full-tier checkpoints"
    )
    p.set_defaults(func=_reproduce)


def add_atlas_options(p: argparse.ArgumentParser, top_k: int) -> None:
    """Options shared by ``gvcore atlas`` and ``gvcore report``."""
    p.add_argument("--ckpt", action="append", default=[], help="checkpoint file (1 to 8; repeat)")
    p.add_argument(
        "--data", default="bundled", help="image folder, DIV2K folder, image, or 'bundled' (test split)"
    )
    p.add_argument("--scale", type=int, required=True, help="SR factor")
    p.add_argument("--protocol", default="standard", help="standard (BasicSR) or official (the GV code's)")
    p.add_argument("--top-k", type=int, default=top_k, help=f"regions per ranking (default {top_k}, max 256)")
    p.add_argument("--direction", default="both", help="gradient direction: gx, gy or both (default)")
    p.add_argument("--region", type=int, default=4, help="region side in 8-px patches (default 4 = 32 px)")
    p.add_argument("--image", action="append", default=None, help="only this image (file stem; repeat)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_atlas(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "atlas",
        help="rank regions by variance deficit",
        description="The structure atlas: the regions of a data set where outputs lose the most gradient "
        "variance against HR, and where one checkpoint recovers the most / least variance relative to another.",
    )
    add_atlas_options(p, top_k=10)
    p.add_argument("--deficit-min", type=float, default=None, help="keep regions with deficit >= this")
    p.add_argument("--deficit-max", type=float, default=None, help="keep regions with deficit <= this")
    p.add_argument(
        "--ranking", action="append", default=None, help="worst, most_recovered, least_recovered, overshoot"
    )
    p.add_argument("--csv", default=None, help="write the ranked regions here")
    p.add_argument("--table-csv", default=None, help="write the per-image table here")
    p.set_defaults(func=_atlas)


NO_REGISTERED_COMMANDS = (
    "no commands of other packages are registered (entry-point group 'gvcore.commands'): the dashboard's "
    "commands (dashboard, precompute, report) come with the package: pip install -e . in the repository, or "
    "pip install 'gvcore[dashboard]'"
)


def _parser_and_registered() -> tuple[argparse.ArgumentParser, set[str], list[str]]:
    """The parser, every command name it knows, and the names added by other packages."""
    parser = argparse.ArgumentParser(prog="gvcore", description="Gradient Variance Lab command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_eval(sub)
    _add_reproduce(sub)
    _add_atlas(sub)
    # lazy: published models (gvcore zoo list|fetch|score); keeps `import gvcore.cli` light
    from gvcore.zoo.cli import add_zoo

    add_zoo(sub)
    names = set(sub.choices)
    added = add_registered(sub, names)
    if not added:
        parser.epilog = f"note: {NO_REGISTERED_COMMANDS}"
    return parser, names, added


def build_parser() -> argparse.ArgumentParser:
    """The ``gvcore`` argument parser: the built-in sub-commands and those registered by other packages."""
    return _parser_and_registered()[0]


def _train(args: argparse.Namespace) -> int:
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.training.run import TrainConfig, train

    config = TrainConfig(
        arch=args.arch,
        scale=args.scale,
        out=args.out,
        loss=args.loss,
        data=args.data,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        seed=args.seed,
        resume=args.resume,
        device=args.device,
        gv_weight=args.gv_weight,
        gv_patch_size=args.gv_patch_size,
        gv_distance=args.gv_distance,
        protocol=args.protocol,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        grad_clip=args.grad_clip,
        weight_decay=args.weight_decay,
        amp=args.amp,
        log_every=args.log_every,
        val_every=args.val_every,
        ckpt_every=args.ckpt_every,
        val_data=args.val_data,
        val_images=args.val_images,
        val_crop=args.val_crop,
        workers=args.workers,
        threads=args.threads,
        label=args.label,
        progress=not args.no_progress,
        stop_after=args.stop_after,
        keep_snapshots=args.keep_snapshots,
    )
    result = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
        print(f"trained {result.steps} steps in {result.elapsed_s:.1f} s -> {result.checkpoint}  {metrics}")
    return 0


def check_writable_file(path: Path, example: str = "eval.csv") -> None:
    """Refuse an output path that cannot be written; a folder is answered with ``folder/example``."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder; give a file name such as {path / example}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {path}: permission denied")


def _eval(args: argparse.Namespace) -> int:
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.eval.evaluate import EVAL_COLUMNS, METRIC_COLUMNS, summarize, to_markdown, write_csv
    from gvcore.eval.inference import resolve_device

    device = resolve_device(args.device, "--device")
    _check_eval_args(args)
    several = len(args.ckpt) > 1 or any(Path(c).is_dir() for c in args.ckpt)
    errors: list[str] | None = [] if several else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        frame = _evaluate_args(args, errors, device)
    for warning in caught:
        if str(warning.message).startswith("results database"):
            print(f"gvcore eval: warning: {warning.message}", file=sys.stderr)
    for note in frame.attrs.get("notes", []):
        print(f"gvcore eval: note: {note}", file=sys.stderr)
    extra = [c for c in frame.columns if c not in EVAL_COLUMNS]  # optional metrics (lpips)
    print(to_markdown(summarize(frame), ("method", "images", *METRIC_COLUMNS, *extra)))
    if args.per_image:
        print()
        print(
            to_markdown(frame, columns=("method", "image", "psnr", "ssim", "gv_distance", "var_gx", "var_gy"))
        )
    if args.csv:
        write_csv(frame, args.csv)
        print(f"wrote {args.csv}")
    for line in errors or []:
        print(f"gvcore eval: error: {line}", file=sys.stderr)
    return 1 if errors else 0


def _check_eval_args(args: argparse.Namespace) -> None:
    """``gvcore eval``'s option combinations, checked before anything is read."""
    if args.tile_batch is not None and args.tile_batch < 1:
        raise ValueError(f"--tile-batch must be a positive integer, got {args.tile_batch}")
    if args.csv:
        check_writable_file(Path(args.csv))
    if args.lr is not None and args.hr is None:
        raise ValueError("--lr needs --hr (the HR folder its files are paired with by stem)")
    if args.hr is not None and args.data != "bundled":
        raise ValueError("give either --data or --hr/--lr, not both")
    if args.cache is not None and args.lr_only:
        raise ValueError("--cache stores scores against HR; --lr-only has none: leave one of them out")


def _cache_path(value: str | None) -> str | Path | None:
    """``--cache``'s database: ``None`` (off), the named file, or :func:`gvcore.eval.results_db.default_path`."""
    if value != "":
        return value
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.eval.results_db import default_path

    return default_path()


def _evaluate_args(args: argparse.Namespace, errors: list[str] | None, device: str) -> Any:
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.eval.evaluate import evaluate

    return evaluate(
        args.ckpt,
        args.hr if args.hr is not None else args.data,
        scale=args.scale,
        protocol=args.protocol,
        lr_only=args.lr_only,
        lr_dir=args.lr,
        tile=args.tile,
        overlap=args.overlap,
        device=device,
        progress=not args.no_progress,
        cache=_cache_path(args.cache),
        errors=errors,
        tile_batch=args.tile_batch,
    )


def _reproduce(args: argparse.Namespace) -> int:
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.reproduce.run import reevaluate, reproduce, verify

    if args.tier == "full":
        # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
        from gvcore.reproduce.full import evaluate_full, train_full

        if not args.score_only:
            train_full(out=args.out, work=args.work or "runs/full", device=args.device, jobs=args.jobs)
        evaluate_full(args.out, progress=not args.no_progress)
        return 0
    if args.verify:
        report = verify(args.out, progress=not args.no_progress)
        print(report.message)
        return 0 if report.ok else 1
    if args.reevaluate:
        reevaluate(out=args.out, work=args.work, jobs=args.jobs, progress=not args.no_progress)
        return 0
    reproduce(out=args.out, work=args.work, smoke=args.smoke, jobs=args.jobs, progress=not args.no_progress)
    return 0


def progress_bar(enabled: bool, desc: str) -> tuple[Callable[[int, int, str], None], Callable[[], None]]:
    """The atlas's ``progress(done, total, name)`` callback drawing a tqdm bar, and the function that closes it.

    The bar is made at the first image, so an early error leaves no empty bar.
    """
    from tqdm.auto import tqdm

    bars: list[Any] = []

    def update(done: int, total: int, name: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, disable=not enabled, desc=desc))
        bars[0].set_postfix_str(name)
        bars[0].update(1)

    def close() -> None:
        for bar in bars:
            bar.close()

    return update, close


def _atlas(args: argparse.Namespace) -> int:
    # lazy: a command imports what it runs, so `gvcore --help` and the other commands stay fast
    from gvcore.eval.atlas import build_atlas, load_checkpoints, regions_frame
    from gvcore.eval.evaluate import to_markdown, write_csv

    for name in (args.csv, args.table_csv):
        if name:
            check_writable_file(Path(name), "atlas.csv")
    low, high = args.deficit_min, args.deficit_max
    deficit_range = (
        None
        if low is None and high is None
        else (
            -float("inf") if low is None else low,
            float("inf") if high is None else high,
        )
    )
    models, infos = load_checkpoints(args.ckpt, args.scale, args.protocol, args.device)
    update, close = progress_bar(not args.no_progress, f"atlas x{args.scale}")
    result = build_atlas(
        models,
        args.data,
        args.scale,
        args.protocol,
        infos=infos,
        top_k=args.top_k,
        direction=args.direction,
        region=args.region,
        images=args.image,
        deficit_range=deficit_range,
        keep_crops=False,
        progress=update,
    )
    close()
    frame = regions_frame(result, args.ranking)
    print(to_markdown(frame, columns=list(frame.columns)))
    if args.csv:
        write_csv(frame, args.csv)
        print(f"wrote {args.csv}")
    if args.table_csv:
        write_csv(result.table, args.table_csv)
        print(f"wrote {args.table_csv}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gvcore`` console script and of ``python -m gvcore``; returns the exit code."""
    parser, names, added = _parser_and_registered()
    words = list(sys.argv[1:] if argv is None else argv)
    if not added and words and not words[0].startswith("-") and words[0] not in names:
        print(f"gvcore: error: unknown command {words[0]!r}; {NO_REGISTERED_COMMANDS}", file=sys.stderr)
        return 2
    args = parser.parse_args(words)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, OSError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"gvcore {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gvcore {args.command}: interrupted", file=sys.stderr)
        return 130
