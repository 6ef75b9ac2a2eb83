"""Benchmark: the real dashboard server's memory while several real browsers use it, and after they leave.

Usage::

    python bench/bench_dashboard_server.py [--browsers 4] [--duration 120] [--cooldown 60] [--big-uploads 0]
                                           [--side 1500] [--uploads 32] [--csv samples.csv] [--probe probe.jsonl]

Starts ``python -m gvcore dashboard --port <free port>`` from the repository root (so the shipped
``.streamlit/config.toml`` applies, as for a user), with ``GVLAB_ASSETS`` at the repository's ``assets/`` and
``HOME``, the results database, the training-runs folder and the XDG folders in a temporary directory (nothing
is read from or written to the user's files). Then ``--browsers`` headless Debian Chromium instances (Playwright,
one each, in parallel) cycle through the pages: landing, variance explorer with an upload (a different image
every time: ``--side`` x ``--side`` PNGs, smooth structure plus seeded noise, and ``--big-uploads`` 16 MP
4000x4000 ones interleaved with the first measured uploads), compare, benchmark; every page load waits until
Streamlit has finished running the script and the charts are drawn.

Phases: a warm-up (every browser does one full cycle; models, bundled images and tables get cached), a baseline
(the server's RSS a few seconds after the warm-up, in this run), ``--duration`` seconds of measured cycles, then
every browser closes and the server is watched for ``--cooldown`` seconds. The server's resident set size
(``VmRSS`` from ``/proc/<pid>/status``, summed over its child processes if any) is sampled every second
throughout. Printed: baseline, peak growth, growth when the browsers closed, growth at the end of the cool-down,
and the plateau test: the maximum of the last third of the measured phase minus the maximum of its first third
(it plateaued when that is under ``--plateau-mib``; the maximum and median growth of each third are printed
too, since one 16 MP upload in flight is a transient peak of several hundred MiB). The server's log goes to a
temporary file, whose tail is printed on failure; the server is always stopped at the end (its process group).

With ``--probe FILE``, the server also loads ``bench/server_probe/sitecustomize.py``, which writes every 10 s one
JSON line to ``FILE`` saying where its memory is (tensors and arrays reachable from Python, glibc's heap,
Streamlit's sessions and uploaded files, the dashboard's caches); the run ends with those records at the
baseline, at the peak, when the browsers closed and at the end.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
if (
    str(ROOT) not in sys.path
):  # `python bench/bench_dashboard_server.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from tests.serving import CHROMIUM_ARGS, dashboard_command, free_port, fresh_home, serve  # noqa: E402

PROG = "bench_dashboard_server.py"
# url path -> minimum number of drawn Plotly charts once the page has finished (as in tests/test_browser.py)
PAGES = {"": 3, "explorer": 4, "compare": 3, "benchmark": 2}
BIG_SIDE = 4000  # 16 MP, the default upload limit (GVLAB_MAX_PIXELS)
LOAD_TIMEOUT_MS = 240_000
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def fail(message: str) -> SystemExit:
    """The exception that ends the benchmark with one ``error:`` line (exit 2)."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return SystemExit(2)


# --- the server's memory -------------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    """Map every running pid to its children's pids (from ``/proc/*/stat``)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS line)


def tree_rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` and all its descendants, in MiB (Linux ``/proc``)."""
    tree = _children()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _vm_rss_kib(current)
        todo.extend(tree.get(current, []))
    return total / 1024


@dataclass
class Sampler:
    """Samples the server's RSS every ``interval`` seconds in a thread, tagged with the current phase."""

    pid: int
    interval: float = 1.0
    phase: str = "start"
    samples: list[tuple[float, str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        """Start sampling."""
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def sample(self) -> float:
        """Take one sample now and return it (MiB)."""
        rss = tree_rss_mib(self.pid)
        self.samples.append((time.monotonic() - self._t0, self.phase, rss))
        return rss

    def _run(self) -> None:
        last_print = -10.0
        while not self._stop.is_set():
            rss = self.sample()
            now = time.monotonic() - self._t0
            if now - last_print >= 10:
                print(f"  t={now:6.0f} s  RSS {rss:7.0f} MiB  ({self.phase})", flush=True)
                last_print = now
            self._stop.wait(self.interval)
        self.sample()

    def of(self, phase: str) -> list[float]:
        """The RSS samples taken during ``phase``, in order."""
        return [rss for _, p, rss in self.samples if p == phase]


# --- the uploads ---------------------------------------------------------------------------------------------
def write_png(path: Path, index: int, side: int) -> Path:
    """Write a distinct ``side x side`` RGB PNG (smooth structure plus seeded noise) to ``path``."""
    from PIL import Image

    rng = np.random.default_rng(1000 + index)
    axis = np.arange(side, dtype=np.float32)
    structure = (
        np.sin(axis[None, :] / (17.0 + index)) * 50 + np.cos(axis[:, None] / (23.0 + index)) * 50 + 128
    )
    pixels = np.empty((side, side, 3), dtype=np.uint8)
    for row in range(0, side, 500):  # in bands, so a 16 MP image does not need 200 MB of float noise at once
        band = structure[row : row + 500, :, None] + rng.normal(0, 12, (min(500, side - row), side, 3))
        pixels[row : row + 500] = np.clip(band, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    path.write_bytes(buffer.getvalue())
    return path


class Uploads:
    """The queue of upload files, each used once (then reused in order, which is counted and reported)."""

    def __init__(self, small: list[Path], big: list[Path]) -> None:
        """Hold ``small`` warm-up/regular uploads and ``big`` ones (interleaved with the first measured)."""
        self._lock = threading.Lock()
        self._small = small
        self._big = list(big)
        self._next_small = 0
        self._measured = 0
        self.reused = 0

    def next(self, measured: bool) -> Path:
        """The next upload; during the measured phase every other one is big until the big ones run out."""
        with self._lock:
            if measured:
                self._measured += 1
                if self._big and self._measured % 2 == 1:
                    return self._big.pop(0)
            if self._next_small >= len(self._small):
                self.reused += 1
            path = self._small[self._next_small % len(self._small)]
            self._next_small += 1
            return path


# --- the server ----------------------------------------------------------------------------------------------
@contextmanager
def dashboard_server(work: Path, port: int, probe: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m gvcore dashboard`` in its own process group, isolated in ``work``; always stopped.

    With ``probe``, the server loads the memory probe (``bench/server_probe``), which appends to that file.
    """
    home = work / "home"
    for sub in ("home", "home/.cache", "home/.config", "runs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env = fresh_home(home)
    env.update(
        GVLAB_ASSETS=str(ROOT / "assets"),
        GVLAB_RUNS=str(work / "runs"),
        GVLAB_RESULTS_DB=str(work / "results.sqlite"),
    )
    if probe is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench" / "server_probe"), env["PYTHONPATH"]])
        env["GVLAB_PROBE_LOG"] = str(probe)
        env["GVLAB_PROBE_EVERY"] = "10"
    started = False
    try:
        with serve(
            dashboard_command(port), port, env=env, cwd=ROOT, log=work / "server.log", timeout=90
        ) as server:
            started = True
            yield server.process
    except RuntimeError as err:
        if started:
            raise
        raise fail(str(err)) from None  # it did not start: the message has the log's tail


# --- the browsers --------------------------------------------------------------------------------------------
@dataclass
class Shared:
    """What the browser threads share with the main thread."""

    url: str
    chromium: str
    uploads: Uploads
    deadline: float = 0.0  # set when the measured phase starts
    warmed: threading.Barrier | None = None
    go: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    loads: int = 0
    uploads_done: int = 0
    upload_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record_error(self, who: str, err: BaseException) -> None:
        """Remember a failed page (first line of the message)."""
        with self.lock:
            self.errors.append(f"{who}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


def _wait_done(page: Page, min_charts: int) -> None:
    page.wait_for_selector(DONE, timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=min_charts,
        timeout=LOAD_TIMEOUT_MS,
    )


def _check_no_error(page: Page, where: str) -> None:
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"{where}: the page shows an exception")
    alert = page.locator('[data-testid="stAlertContentError"]')
    if alert.count():
        raise RuntimeError(f"{where}: the page shows an error: {alert.first.inner_text()[:200]}")


def _explorer_upload(page: Page, url: str, image: Path) -> None:
    """Open the variance explorer, switch to "Upload", upload ``image`` and wait for its maps."""
    page.goto(f"{url}/explorer", wait_until="domcontentloaded")
    _wait_done(page, PAGES["explorer"])
    page.locator('[data-testid="stRadio"]').filter(has_text="Image source").get_by_text(
        "Upload", exact=True
    ).click()
    page.get_by_text("Upload an image, or switch to a bundled sample").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    page.wait_for_selector(DONE, timeout=LOAD_TIMEOUT_MS)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(image))
    from PIL import Image

    with Image.open(image) as opened:
        width, height = opened.size
    # the maps' caption names the image size; it appears only once this upload has been analysed
    page.get_by_text(f"from a {width}x{height} image").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    _wait_done(page, PAGES["explorer"])
    _check_no_error(page, f"explorer ({image.name})")


def _cycle(page: Page, shared: Shared, measured: bool, who: str) -> None:
    """One round through the pages; a page that fails is recorded and the round goes on."""
    for path in PAGES:
        if (measured and time.monotonic() > shared.deadline) or shared.abort.is_set():
            return
        try:
            if path == "explorer":
                image = shared.uploads.next(measured)
                started = time.monotonic()
                _explorer_upload(page, shared.url, image)
                with shared.lock:
                    shared.uploads_done += 1
                    shared.upload_seconds.append(time.monotonic() - started)
            else:
                page.goto(f"{shared.url}/{path}", wait_until="domcontentloaded")
                _wait_done(page, PAGES[path])
                _check_no_error(page, f"/{path}")
            with shared.lock:
                shared.loads += 1
        except Exception as err:  # a failed page is a result to report, not a reason to stop the others
            shared.record_error(f"{who} /{path}", err)


def browser_worker(shared: Shared, index: int) -> None:
    """One real browser: a warm-up round, then rounds until the deadline; closed at the end."""
    from playwright.sync_api import sync_playwright

    who = f"browser {index + 1}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shared.chromium, args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                _cycle(page, shared, measured=False, who=who)
                if shared.warmed is not None:
                    shared.warmed.wait()
                shared.go.wait()
                while time.monotonic() < shared.deadline and not shared.abort.is_set():
                    _cycle(page, shared, measured=True, who=who)
            finally:
                browser.close()
    except threading.BrokenBarrierError:
        pass
    except Exception as err:
        shared.record_error(who, err)
        if shared.warmed is not None:
            shared.warmed.abort()


# --- the report ----------------------------------------------------------------------------------------------
@dataclass
class Figures:
    """The measured figures, in MiB."""

    baseline: float
    peak_growth: float
    end_growth: float
    cooldown_growth: float
    first_third_max: float
    last_third_max: float
    #: (max, median) growth over the baseline in each third of the measured phase
    thirds: list[tuple[float, float]]

    @property
    def plateau_rise(self) -> float:
        """Last third's maximum minus the first third's maximum (of the measured phase)."""
        return self.last_third_max - self.first_third_max


def figures(sampler: Sampler, baseline: float, closed: float) -> Figures:
    """Reduce the samples to the reported figures."""
    run = sampler.of("measured") or [baseline]
    cool = sampler.of("cooldown") or [closed]
    third = max(1, len(run) // 3)
    return Figures(
        baseline=baseline,
        peak_growth=max([*run, *cool, closed]) - baseline,
        end_growth=closed - baseline,
        cooldown_growth=statistics.median(cool[-5:]) - baseline,
        first_third_max=max(run[:third]),
        last_third_max=max(run[-third:]),
        thirds=[
            (max(part) - baseline, statistics.median(part) - baseline)
            for part in (run[:third], run[third:-third] or run[:third], run[-third:])
        ],
    )


def write_csv(path: Path, sampler: Sampler) -> None:
    """Every sample: seconds since the server started, phase, RSS (MiB)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "phase", "rss_mib"])
        writer.writerows((f"{t:.1f}", phase, f"{rss:.1f}") for t, phase, rss in sampler.samples)


def report(args: argparse.Namespace, shared: Shared, fig: Figures, start_rss: float) -> None:
    """Print the run's figures (one table, the README's format)."""
    plateaued = fig.plateau_rise < args.plateau_mib
    upload_s = statistics.median(shared.upload_seconds) if shared.upload_seconds else float("nan")
    print()
    print(
        f"{args.browsers} browsers, {args.duration:.0f} s measured + {args.cooldown:.0f} s cool-down, "
        f"{args.side}x{args.side} uploads + {args.big_uploads} of {BIG_SIDE}x{BIG_SIDE}: "
        f"{shared.loads} page loads, {shared.uploads_done} uploads analysed (median {upload_s:.1f} s each, "
        f"{shared.uploads.reused} reused), {len(shared.errors)} failed pages"
    )
    print(
        f"| server RSS at start | after warm-up (baseline) | peak growth | growth when browsers closed "
        f"| growth after {args.cooldown:.0f} s cool-down | last third max - first third max | plateaued |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {start_rss:.0f} MiB | {fig.baseline:.0f} MiB | +{fig.peak_growth:.0f} MiB | {fig.end_growth:+.0f} MiB "
        f"| {fig.cooldown_growth:+.0f} MiB | {fig.plateau_rise:+.0f} MiB | {'yes' if plateaued else 'NO'} |"
    )
    print(
        "growth by third of the measured phase (max / median): "
        + ", ".join(f"{high:+.0f} / {mid:+.0f} MiB" for high, mid in fig.thirds)
    )
    for line in shared.errors[:20]:
        print(f"  failed: {line}")


PROBE_COLUMNS = (
    ("rss_mib", "RSS"),
    ("tensors_mib", "tensors"),
    ("arrays_mib", "arrays"),
    ("bytes_mib", "bytes"),
    ("uploads_mib", "uploads"),
    ("data_cache_mib", "data cache"),
    ("malloc_mmap_mib", "malloc mmap"),
    ("malloc_free_mib", "malloc free"),
)


def report_probe(path: Path, moments: dict[str, float]) -> None:
    """The probe's records nearest to each of ``moments`` (name -> wall-clock time), and at the RSS peak."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        print(f"probe: no record in {path} (did the server start the probe?)")
        return
    chosen = {name: min(records, key=lambda r: abs(r["time"] - at)) for name, at in moments.items()}
    chosen["RSS peak"] = max(records, key=lambda r: r["rss_mib"])
    chosen["end"] = records[-1]
    print(f"\nwhere the memory is (server probe, {len(records)} records in {path}; MiB):")
    print(
        "| moment | " + " | ".join(title for _, title in PROBE_COLUMNS) + " | sessions (active) | largest |"
    )
    print("|---|" + "---|" * (len(PROBE_COLUMNS) + 2))
    for name, record in chosen.items():
        cells = [f"{record.get(key, float('nan')):.0f}" for key, _ in PROBE_COLUMNS]
        sessions = f"{record.get('sessions', '?')} ({record.get('active_sessions', '?')})"
        largest = ", ".join(record.get("largest", [])[:3])
        print(f"| {name} | " + " | ".join(cells) + f" | {sessions} | {largest} |")


# --- main ----------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--browsers", type=int, default=4, help="concurrent real browsers (default 4)")
    parser.add_argument("--duration", type=float, default=120, help="measured seconds after warm-up")
    parser.add_argument("--cooldown", type=float, default=60, help="seconds watched after the browsers close")
    parser.add_argument("--big-uploads", type=int, default=0, help="16 MP (4000x4000) uploads, interleaved")
    parser.add_argument("--side", type=int, default=1500, help="side of the regular uploads (default 1500)")
    parser.add_argument("--uploads", type=int, default=32, help="distinct regular uploads made (default 32)")
    parser.add_argument("--plateau-mib", type=float, default=64, help="plateau tolerance (default 64 MiB)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument(
        "--probe",
        type=Path,
        default=None,
        help="JSON-lines file for the server's memory probe (bench/server_probe)",
    )
    parser.add_argument("--csv", type=Path, default=None, help="write every RSS sample to this CSV file")
    args = parser.parse_args()
    if args.browsers < 1 or args.uploads < 1 or args.big_uploads < 0:
        parser.error("--browsers and --uploads must be >= 1, --big-uploads >= 0")
    if args.duration <= 0 or args.cooldown < 0:
        parser.error("--duration must be > 0 and --cooldown >= 0")
    if args.probe is not None and (args.probe.is_dir() or not args.probe.parent.is_dir()):
        parser.error(f"--probe {args.probe}: must be a file in an existing folder")
    if not 16 <= args.side <= BIG_SIDE:
        parser.error(f"--side must be in 16..{BIG_SIDE}")
    return args


def check_tools(chromium: str) -> None:
    """Fail with one clear line when Chromium or Playwright is missing, or /proc is not there."""
    if not Path(chromium).is_file() or not os.access(chromium, os.X_OK):
        raise fail(f"Chromium not found at {chromium} (apt-get install -y chromium, or pass --chromium PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise fail("the playwright Python package is not installed (pip install playwright)") from None
    if not Path("/proc/self/status").is_file():
        raise fail("/proc is not available: the server's RSS is read from /proc/<pid>/status (Linux only)")


def run(args: argparse.Namespace, work: Path) -> int:
    """Make the uploads, start the server, drive the browsers, sample, report; returns the exit code."""
    print(
        f"making {args.uploads} {args.side}x{args.side} and {args.big_uploads} {BIG_SIDE}x{BIG_SIDE} PNGs ..."
    )
    small = [write_png(work / f"upload_{i:02d}.png", i, args.side) for i in range(args.uploads)]
    big = [write_png(work / f"big_{i:02d}.png", 500 + i, BIG_SIDE) for i in range(args.big_uploads)]
    port = free_port()
    if args.probe is not None:
        args.probe.write_text("")
    moments: dict[str, float] = {}
    with dashboard_server(work, port, args.probe) as server:
        sampler = Sampler(server.pid)
        start_rss = sampler.sample()
        sampler.start()
        shared = Shared(url=f"http://127.0.0.1:{port}", chromium=args.chromium, uploads=Uploads(small, big))
        shared.warmed = threading.Barrier(args.browsers + 1)
        sampler.phase = "warm-up"
        threads = [
            threading.Thread(target=browser_worker, args=(shared, i), name=f"browser-{i + 1}", daemon=True)
            for i in range(args.browsers)
        ]
        for thread in threads:
            thread.start()
        try:
            shared.warmed.wait()
        except threading.BrokenBarrierError:
            shared.abort.set()
            shared.go.set()
            sampler.stop()
            print(f"server log: {work / 'server.log'}", file=sys.stderr)
            raise fail(f"a browser failed during the warm-up: {shared.errors}") from None
        time.sleep(3)  # the warm-up's last requests settle
        baseline = sampler.sample()
        moments["baseline"] = time.time()
        sampler.phase = "measured"
        shared.deadline = time.monotonic() + args.duration
        shared.go.set()
        print(f"warm-up done: baseline {baseline:.0f} MiB; measuring for {args.duration:.0f} s", flush=True)
        for thread in threads:
            thread.join()
        closed = sampler.sample()
        moments["browsers closed"] = time.time()
        sampler.phase = "cooldown"
        print(f"browsers closed: RSS {closed:.0f} MiB; cool-down {args.cooldown:.0f} s", flush=True)
        time.sleep(args.cooldown)
        sampler.stop()
        if server.poll() is not None:
            raise fail(
                f"the server exited during the run (code {server.returncode}); see {work / 'server.log'}"
            )
    fig = figures(sampler, baseline, closed)
    report(args, shared, fig, start_rss)
    if args.probe is not None:
        report_probe(args.probe, moments)
    if args.csv is not None:
        write_csv(args.csv, sampler)
        print(f"samples: {args.csv}")
    if shared.errors:
        print(f"server log tail ({work / 'server.log'}):")
        print((work / "server.log").read_text(errors="replace")[-2000:])
    return 1 if shared.errors else 0


def main() -> int:
    """Run the benchmark; the server and browsers are stopped whatever happens (Ctrl-C included)."""
    args = parse_args()
    check_tools(args.chromium)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` blocks stop the server
    with tempfile.TemporaryDirectory(prefix="gvlab-membench-") as work:
        return run(args, Path(work))


if __name__ == "__main__":
    raise SystemExit(main())
