"""End-to-end: the Training snapshots page in headless Chromium draws its four iteration curves.

Serves the dashboard (``streamlit run``, free 127.0.0.1 port) with ``GVLAB_RUNS`` pointing at two short snapshot
runs (:mod:`tests.snapshot_fixtures`) and ``GVLAB_DATA_ROOTS`` at a tiny BasicSR ``Set5``, presses *Score
snapshots* and checks the charts are drawn with one line per run. Skips without Chromium/Playwright unless
``CI=true`` (see :mod:`tests.test_browser`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import CHROMIUM_ARGS, serve_dashboard
from tests.snapshot_fixtures import make_snapshot_runs
from tests.test_browser import ARTIFACTS, LOAD_TIMEOUT_MS, _chromium, _wait_until_done
from tests.test_snapshots_page import make_benchmark_root

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _chromium()
    runs = tmp_path_factory.mktemp("runs")
    make_snapshot_runs(runs)
    data = make_benchmark_root(tmp_path_factory.mktemp("data"))
    env = {
        **os.environ,
        "GVLAB_ASSETS": str(tmp_path_factory.mktemp("assets")),
        "GVLAB_RUNS": str(runs),
        "GVLAB_DATA_ROOTS": str(data),
    }
    with serve_dashboard(env, tmp_path_factory.mktemp("server")) as running:
        yield running.url


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
            page.get_by_role("button", name=re.compile(r"Score \d+ snapshot folder")).click()
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
