"""End-to-end: the Training snapshots page in headless Chromium draws its four iteration curves.

Serves the dashboard (``streamlit run``, free 127.0.0.1 port) with ``GVLAB_RUNS`` pointing at two short snapshot
runs (:mod:`tests.snapshot_fixtures`) and ``GVLAB_DATA_ROOTS`` at a tiny BasicSR ``Set5``, presses *Evaluate
snapshots* and checks the charts are drawn with one line per run. Skips without Chromium/Playwright unless
``CI=true`` (see :mod:`tests.test_browser`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.snapshot_fixtures import make_snapshot_runs
from tests.test_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    LOAD_TIMEOUT_MS,
    _chromium,
    _free_port,
    _wait_until_done,
)
from tests.test_snapshots_page import make_benchmark_root

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _chromium()
    runs = tmp_path_factory.mktemp("runs")
    make_snapshot_runs(runs)
    data = make_benchmark_root(tmp_path_factory.mktemp("data"))
    port = _free_port()
    env = {
        **os.environ,
        "GVLAB_ASSETS": str(tmp_path_factory.mktemp("assets")),
        "GVLAB_RUNS": str(runs),
        "GVLAB_DATA_ROOTS": str(data),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = (tmp_path_factory.mktemp("server") / "streamlit.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_iteration_curves_render(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            page.goto(f"{server}/snapshots", wait_until="domcontentloaded")
            page.wait_for_selector(
                '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LOAD_TIMEOUT_MS
            )
            page.get_by_role("button", name="Evaluate snapshots").click()
            _wait_until_done(page, 4)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator(".js-plotly-plot .main-svg").count() >= 4
            # one line per run in each chart: the legend names both runs
            legends = page.locator(".js-plotly-plot .legendtext").all_text_contents()
            assert legends.count("l1") == 4
            assert legends.count("l1gv") == 4
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "snapshots.png"), full_page=True)
        finally:
            browser.close()
