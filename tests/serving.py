"""Start a Streamlit server for a browser test or a benchmark; wait until it is healthy; always stop it.

The one place that knows how: the browser tests (``tests/test_browser*.py``) and the benchmarks
(``bench/bench_page_speed.py``, ``bench/bench_dashboard_pages.py``, ``bench/bench_dashboard_server.py``) all use
:func:`serve`. Benchmarks put the repository root on ``sys.path`` and import this module as ``tests.serving``
(``tests/`` is a namespace package, like ``bench/``; pytest's ``pythonpath = ["."]`` does the same for tests).

- :func:`serve` runs a command that starts a Streamlit server on ``port`` (in its own process group, its output
  in a log file), yields a :class:`Server` once ``/_stcore/health`` answers, and stops the whole group at the end
  (SIGTERM, then SIGKILL), whatever happens in the block;
- :func:`streamlit_command` is ``python -m streamlit run SCRIPT`` with the flags ``gvcore dashboard`` passes
  (127.0.0.1, no usage statistics, headless, viewer toolbar); :func:`dashboard_command` is ``python -m gvcore
  dashboard``, the way a user starts it;
- :func:`serve_one_line` serves the one-line page (``st.write(...)``) that benchmarks compare the dashboard with;
- :func:`fresh_home` is an environment whose ``HOME`` and XDG folders are a given (empty) folder: a fresh install;
- :data:`CHROMIUM_ARGS` and :func:`find_chromium`: the headless Debian Chromium every browser check launches.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium, headless, never fetching anything of its own
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: what ``gvcore dashboard`` passes to Streamlit (``dashboard/__main__.py``), for a plain ``streamlit run``
LAUNCH_FLAGS = [
    "--server.address=127.0.0.1",
    "--browser.serverAddress=127.0.0.1",
    "--browser.gatherUsageStats=false",
    "--server.headless=true",
    "--client.toolbarMode=viewer",
    "--server.fileWatcherType=none",
    "--runner.postScriptGC=false",
    "--server.enableStaticServing=true",
]
#: the baseline of the page-speed benchmarks: the least a Streamlit page can be
ONE_LINE_PAGE = 'import streamlit as st\n\nst.write("Gradient Variance Lab")\n'


@dataclass(frozen=True)
class Server:
    """A running server: its URL (``http://127.0.0.1:PORT``, no trailing slash), process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def find_chromium() -> str | None:
    """The path of Debian's Chromium, or ``None`` when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streamlit_command(script: str | Path, port: int, *extra: str) -> list[str]:
    """``python -m streamlit run SCRIPT`` on 127.0.0.1:``port`` with :data:`LAUNCH_FLAGS` and ``extra``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        *LAUNCH_FLAGS,
        f"--server.port={port}",
        *extra,
    ]


def dashboard_command(port: int, *extra: str) -> list[str]:
    """``python -m gvcore dashboard --port PORT [extra]``: the dashboard as a user starts it."""
    return [sys.executable, "-m", "gvcore", "dashboard", "--port", str(port), *extra]


def fresh_home(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``HOME`` and the XDG folders in ``home`` and the repository importable.

    Nothing an earlier run cached (``GVLAB_CACHE`` is dropped too) is found there: a fresh install.
    """
    result = dict(os.environ if env is None else env)
    result.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), result.get("PYTHONPATH", "")) if p),
    )
    result.pop("GVLAB_CACHE", None)
    return result


@contextmanager
def serve(
    command: Sequence[str],
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    log: Path | None = None,
    timeout: float = 120.0,
) -> Iterator[Server]:
    """Run ``command`` (a Streamlit server on 127.0.0.1:``port``); yield it once healthy; stop it at the end.

    Its output goes to ``log`` (default: a temporary file, removed afterwards). Raises :class:`RuntimeError`
    with the log's tail when the process exits or is not healthy within ``timeout`` seconds.
    """
    with _log_file(log) as log_path:
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(os.environ if env is None else env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the server and anything it starts form one group, stopped together
            )
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            wait_healthy(server, timeout)
            yield server
        finally:
            stop(process)


@contextmanager
def _log_file(log: Path | None) -> Iterator[Path]:
    """``log`` itself, or a temporary file removed when the block ends."""
    if log is not None:
        yield log
        return
    with tempfile.TemporaryDirectory(prefix="gvlab-server-") as folder:
        yield Path(folder) / "server.log"


def wait_healthy(server: Server, timeout: float = 120.0) -> None:
    """Return once ``/_stcore/health`` answers 200; :class:`RuntimeError` (with the log's tail) if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        code = server.process.poll()
        if code is not None or time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
            why = f"exited with code {code}" if code is not None else f"not healthy after {timeout:.0f} s"
            raise RuntimeError(f"the Streamlit server did not start ({why}); its log:\n{tail}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop ``process``'s group (it leads one: :func:`serve`): SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serve_one_line(
    folder: Path, env: Mapping[str, str] | None = None, port: int | None = None, timeout: float = 120.0
) -> Iterator[Server]:
    """Serve :data:`ONE_LINE_PAGE` (written to ``folder/one_line.py``) like :func:`serve`, from ``folder``."""
    script = folder / "one_line.py"
    script.write_text(ONE_LINE_PAGE)
    port = free_port() if port is None else port
    with serve(streamlit_command(script, port), port, env=env, cwd=folder, timeout=timeout) as server:
        yield server


@contextmanager
def serve_dashboard(
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    tree: Path = ROOT,
    timeout: float = 120.0,
) -> Iterator[Server]:
    """``streamlit run dashboard/app.py`` from the checkout ``tree`` (its ``.streamlit/config.toml`` applies).

    Like :func:`serve` on a free port; the output goes to ``log_dir/streamlit.log`` when ``log_dir`` is given.
    """
    port = free_port()
    log = None if log_dir is None else log_dir / "streamlit.log"
    command = streamlit_command("dashboard/app.py", port)
    with serve(command, port, env=env, cwd=tree, log=log, timeout=timeout) as server:
        yield server
