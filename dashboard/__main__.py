"""Serve the dashboard on 127.0.0.1 from any working directory.

``gvcore dashboard`` is the console command; ``python -m dashboard`` (with gvcore installed) and
``python path/to/dashboard/__main__.py`` do the same.

Streamlit reads ``.streamlit/config.toml`` from the working directory only; this launcher passes the settings
that matter for safety on the command line instead (the bind address, no usage statistics, headless, no
developer menu, no source file watcher), so they hold wherever the server is started.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: environment variable the launcher sets when the user asked for a non-loopback ``--host`` explicitly
ALLOW_REMOTE_ENV = "GVLAB_ALLOW_REMOTE"


def streamlit_argv(
    host: str = "127.0.0.1", port: int | None = None, extra: list[str] | None = None
) -> list[str]:
    """The ``streamlit run`` command line for :data:`APP` bound to ``host`` (and ``port``), telemetry off."""
    argv = [
        "streamlit",
        "run",
        str(APP),
        f"--server.address={host}",
        f"--browser.serverAddress={host}",
        "--browser.gatherUsageStats=false",
        "--server.headless=true",
        "--client.toolbarMode=viewer",
        "--client.showErrorDetails=type",
        # no watching of source files: a served dashboard does not reload on edits, and the watcher (a walk over
        # every imported module's file after each script run, torch's thousands included, on the server's event
        # loop, plus a polling thread) competed with the page scripts and the static files for the GIL
        "--server.fileWatcherType=none",
        # no full garbage collection after every script run (~0.15 s holding the GIL with torch loaded, while the
        # browser waits for the page's JavaScript); dashboard/housekeeping.py collects every 30 s instead
        "--runner.postScriptGC=false",
        # serve dashboard/static/ at /app/static/: the plotly.js bundle the charts are drawn with (dashboard/charts.py)
        "--server.enableStaticServing=true",
    ]
    if port is not None:
        argv.append(f"--server.port={port}")
    return argv + list(extra or [])


#: what the pages import, loaded once before the server listens (torch alone takes seconds): the first visitor
#: then waits for the page, not for imports
PRELOAD = ("torch", "pandas", "plotly.graph_objects", "plotly.subplots", "PIL.Image", "gvcore.eval.scoring")


def preload() -> None:
    """Import :data:`PRELOAD` (each page's heavy imports) in this process, so no visit pays for them."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def serve(host: str = "127.0.0.1", port: int | None = None, extra: list[str] | None = None) -> int:
    """Run the dashboard in this process until it is stopped; returns Streamlit's exit code.

    A ``host`` other than a loopback address is honoured (the caller asked for it) and sets
    :data:`ALLOW_REMOTE_ENV`, which the app checks before serving anything.
    """
    from streamlit.web import cli as streamlit_cli

    if host not in LOOPBACK:
        os.environ[ALLOW_REMOTE_ENV] = "1"
    preload()
    sys.argv = streamlit_argv(host, port, extra)
    return int(streamlit_cli.main() or 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m dashboard [streamlit options]``: :func:`serve` on 127.0.0.1, extra options passed through."""
    return serve(extra=argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file: make the repository root importable
        sys.path.insert(0, str(APP.parent.parent))
    raise SystemExit(main())
