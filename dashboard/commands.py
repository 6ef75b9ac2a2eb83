"""The dashboard's ``gvcore`` commands: ``dashboard`` (serve it), ``precompute`` (its bundled views), ``report``.

gvcore is the layer below and never imports this package: these functions are registered in
``pyproject.toml`` under the ``gvcore.commands`` entry-point group, which :mod:`gvcore.commands` reads. Each
``add_*`` adds one sub-parser to the ``gvcore`` parser. Nothing heavy is imported here: streamlit, plotly and
the modules that use them are imported when a command runs, so ``gvcore --help`` stays cheap and a missing
extra is reported by the command (exit code 2, one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gvcore.cli import add_atlas_options, check_writable_file, progress_bar

__all__ = ["add_dashboard", "add_precompute", "add_report"]

DASHBOARD_EXAMPLE = """example (like `tensorboard --logdir DIR`):
  gvcore dashboard --ckpt ~/sr/checkpoints --ckpt ~/sr/edsr_x2.pth --data ~/datasets/Set14 --runs ~/sr/runs

--ckpt, --data and --runs may be repeated; they add to GVLAB_CHECKPOINTS, GVLAB_DATA_ROOTS and GVLAB_RUNS
(which keep working). Then open http://127.0.0.1:8501 (or the --port you chose)."""


def add_dashboard(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gvcore dashboard``: serve the dashboard on this machine (options add to the ``GVLAB_*`` variables)."""
    p = sub.add_parser(
        "dashboard",
        help="serve the dashboard",
        description="Serve the Streamlit dashboard (from any working directory). Loopback only by default; "
        "no usage statistics and no request to any outside host.",
        epilog=DASHBOARD_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--assets", default=None, help="assets root with checkpoints/ and results/ (GVLAB_ASSETS)")
    p.add_argument(
        "--ckpt",
        action="append",
        default=[],
        metavar="PATH",
        help="a checkpoint file or a folder of them (.safetensors, .pth, .pt) offered next to the bundled ones; "
        "repeat for more (GVLAB_CHECKPOINTS)",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="ROOT",
        help="an image folder the pages may read (benchmark sets, your images); repeat for more (GVLAB_DATA_ROOTS)",
    )
    p.add_argument(
        "--runs",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of training run directories (log.csv, snapshots/); repeat for more (GVLAB_RUNS)",
    )
    p.set_defaults(func=_dashboard)


def add_precompute(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gvcore precompute``: compute the dashboard's bundled views once."""
    p = sub.add_parser(
        "precompute",
        help="compute the dashboard's bundled views once",
        description="Compute what every dashboard visitor would otherwise compute (the landing page's views, the "
        "structure atlas of its default settings) and keep it on disk, so pages only read it.",
    )
    p.add_argument(
        "--shipped", action="store_true", help="write to <assets>/precomputed (what the repository ships)"
    )
    p.add_argument("--all", action="store_true", help="every landing view (image x scale x protocol x pair)")
    p.add_argument("--assets", default=None, help="assets root with checkpoints/ and results/ (GVLAB_ASSETS)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (CUDA if available)")
    p.set_defaults(func=_precompute)


def add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gvcore report``: one self-contained HTML report."""
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report",
        description="One HTML file (offline, plotly.js embedded): metrics with paired statistics, observation "
        "figures, the atlas gallery, the lambda sweep and the command that made it.",
    )
    add_atlas_options(p, top_k=8)
    p.add_argument("--sweep", action="append", default=[], help="lambda-sweep checkpoint (repeat)")
    p.add_argument("--out", required=True, help="report file (.html)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.add_argument("--max-mb", type=float, default=20.0, help="size budget in MB (default 20)")
    p.set_defaults(func=_report)


def _dashboard(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [name for name in ("streamlit", "plotly") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"the dashboard needs {' and '.join(missing)}, which are not installed: "
            "pip install 'gvcore[dashboard]' (or pip install -r requirements.txt in the repository)"
        )
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    if args.assets is not None:
        assets = Path(args.assets)
        if not assets.is_dir():
            raise ValueError(f"--assets {assets}: no such folder")
        os.environ["GVLAB_ASSETS"] = str(assets.resolve())
    for option, variable, paths in (
        ("--ckpt", "GVLAB_CHECKPOINTS", args.ckpt),
        ("--data", "GVLAB_DATA_ROOTS", args.data),
        ("--runs", "GVLAB_RUNS", args.runs),
    ):
        if paths:
            os.environ[variable] = _with_paths(option, os.environ.get(variable, ""), paths)
    from dashboard.__main__ import LOOPBACK, serve

    if args.host not in LOOPBACK:
        print(
            f"gvcore dashboard: warning: listening on {args.host}, not only this machine: anyone who can reach "
            "it can upload files and run models on this machine",
            file=sys.stderr,
        )
    return serve(host=args.host, port=args.port)


def _with_paths(option: str, current: str, paths: Sequence[str]) -> str:
    """``current`` (an ``os.pathsep``-separated variable) with ``paths`` added, each checked to exist."""
    parts = [p for p in current.split(os.pathsep) if p.strip()]
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise ValueError(f"{option} {raw}: no such file or folder")
        resolved = str(path.resolve())
        if resolved not in parts:
            parts.append(resolved)
    return os.pathsep.join(parts)


def _precompute(args: argparse.Namespace) -> int:
    if args.assets is not None:
        assets = Path(args.assets)
        if not assets.is_dir():
            raise ValueError(f"--assets {assets}: no such folder")
        os.environ["GVLAB_ASSETS"] = str(assets.resolve())
    from dashboard.precompute_jobs import run
    from gvcore.eval.inference import resolve_device

    written = run(shipped=args.shipped, every_view=args.all, device=resolve_device(args.device, "--device"))
    print(f"gvcore precompute: {len(written)} new file(s)")
    return 0


def _report_command(args: argparse.Namespace) -> list[str]:
    """The ``gvcore report`` command line that reproduces ``args`` (every option spelled out)."""
    command = ["gvcore", "report"]
    for flag, values in (("--ckpt", args.ckpt), ("--sweep", args.sweep), ("--image", args.image or [])):
        for value in values:
            command += [flag, str(value)]
    command += ["--data", str(args.data), "--scale", str(args.scale), "--protocol", args.protocol]
    command += ["--top-k", str(args.top_k), "--direction", args.direction, "--region", str(args.region)]
    return [*command, "--out", str(args.out)]


def _report(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force and not out.is_dir():
        raise ValueError(f"{out} exists; pass --force to overwrite it")
    check_writable_file(out, "report.html")
    if not args.max_mb > 0:
        raise ValueError(f"--max-mb must be positive, got {args.max_mb}")
    try:
        from dashboard.report import build_report, write_report
    except ImportError as err:
        raise ValueError(
            f"the report needs the dashboard extras ({err.name} is not installed): pip install 'gvcore[dashboard]'"
        ) from err
    import shlex

    update, close = progress_bar(not args.no_progress, f"report x{args.scale}")
    text = build_report(
        args.ckpt,
        args.data,
        args.scale,
        args.protocol,
        sweep=args.sweep,
        top_k=args.top_k,
        direction=args.direction,
        region=args.region,
        images=args.image,
        command=shlex.join(_report_command(args)),
        device=args.device,
        max_bytes=int(args.max_mb * 2**20),
        progress=update,
    )
    close()
    write_report(text, out, force=args.force)
    print(f"wrote {out} ({len(text.encode()) / 2**20:.1f} MB)")
    return 0
