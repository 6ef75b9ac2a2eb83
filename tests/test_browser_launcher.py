"""End-to-end, in headless Chromium: ``gvcore dashboard --ckpt --data --runs`` as a user starts it, shareable URLs.

The server is ``python -m gvcore dashboard --port P --ckpt DIR --data DIR --runs DIR`` started from a temporary
working directory (not the repository) with the shipped assets; the checks:

- the checkpoint folder given with ``--ckpt`` is offered by Compare, the run given with ``--runs`` is listed by
  Training snapshots (its name, never a server path);
- ``/observation`` (the landing page's own address) opens the landing page, not "Page not found";
- a landing URL with state (``?obs_image=coins&obs_scale=x4``: widget values as shown) reopens that view, and moving a control writes it
  into the URL;
- at 1366x768 the headline, the worst-region crops and the variance-ratio chart are above the fold.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import CHROMIUM_ARGS, dashboard_command, find_chromium, free_port, fresh_home, serve
from tests.snapshot_fixtures import make_snapshot_runs

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 180_000
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def _chromium() -> str:
    path = find_chromium()
    if path is None or (sys.modules.get("playwright") is None and not _has_playwright()):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium and playwright are needed (CI=true)")
        pytest.skip("Debian's Chromium or the playwright package is missing")
    return str(path)


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    _chromium()
    home = tmp_path_factory.mktemp("home")
    ckpts = tmp_path_factory.mktemp("my-checkpoints")
    shutil.copy(ROOT / "assets" / "checkpoints" / "espcn-x2-l1-s1.safetensors", ckpts / "mine-x2.safetensors")
    runs = tmp_path_factory.mktemp("my-runs")
    make_snapshot_runs(runs)
    data = tmp_path_factory.mktemp("my-data")
    env = fresh_home(home)
    for name in ("GVLAB_ASSETS", "GVLAB_RUNS", "GVLAB_CHECKPOINTS", "GVLAB_DATA_ROOTS"):
        env.pop(name, None)
    port = free_port()
    command = dashboard_command(port, "--ckpt", str(ckpts), "--data", str(data), "--runs", str(runs))
    with serve(command, port, env=env, cwd=home) as running:
        yield {"url": running.url, "runs": str(runs), "ckpts": str(ckpts)}


@pytest.fixture(scope="module")
def browser(server: dict[str, str]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _open(browser: object, url: str) -> tuple[object, object]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stElementContainer"]', timeout=TIMEOUT_MS)
    page.wait_for_selector(DONE, timeout=TIMEOUT_MS)
    return context, page


def test_own_checkpoints_and_runs_are_offered(browser: object, server: dict[str, str]) -> None:
    context, page = _open(browser, f"{server['url']}/compare")
    try:
        page.get_by_text("Your checkpoint folders").first.wait_for(timeout=TIMEOUT_MS)
        page.locator('[data-testid="stMultiSelect"]', has_text="checkpoint folders").first.click()
        page.get_by_text("mine-x2", exact=False).first.wait_for(timeout=TIMEOUT_MS)
    finally:
        context.close()
    context, page = _open(browser, f"{server['url']}/snapshots")
    try:
        page.get_by_text("l1gv").first.wait_for(timeout=TIMEOUT_MS)
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert server["runs"] not in body
        assert "Page not found" not in page.content()
    finally:
        context.close()


def test_observation_url_and_its_state(browser: object, server: dict[str, str]) -> None:
    context, page = _open(browser, f"{server['url']}/observation?obs_image=coins&obs_scale=x4")
    try:
        page.get_by_text("On coins at x4").first.wait_for(timeout=TIMEOUT_MS)
        assert "Page not found" not in page.locator("body").inner_text()
        page.locator('[data-testid="stSelectbox"]', has_text="Scale").first.click()
        page.get_by_role("option", name="x2").click()
        page.get_by_text("On coins at x2").first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function("() => !location.search.includes('obs_scale=x4')", timeout=TIMEOUT_MS)
        assert "obs_image=coins" in page.url
    finally:
        context.close()


def test_landing_makes_its_point_above_the_fold(browser: object, server: dict[str, str]) -> None:
    context, page = _open(browser, f"{server['url']}/")
    try:
        headline = page.get_by_text("of HR's gradient variance; L1+GV").first
        crops = page.locator(".gv-crops figure")
        bars = page.locator(".gv-bars")
        bars.wait_for(timeout=TIMEOUT_MS)
        crops.nth(2).wait_for(timeout=TIMEOUT_MS)
        for element in (headline, crops.nth(0), crops.nth(2), bars):
            box = element.bounding_box()
            assert box is not None
            assert box["y"] + box["height"] <= 768, box
        assert "Gradient variance kept" in bars.inner_text()
        assert crops.nth(0).inner_text().strip() == "HR · 100%"  # each crop's badge: the share of HR's kept
        assert crops.nth(0).locator("img").evaluate("img => img.naturalWidth > 0")  # the inline PNG decoded
    finally:
        context.close()
