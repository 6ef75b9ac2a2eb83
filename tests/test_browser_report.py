"""In Debian's Chromium (Playwright): a ``gvcore report`` opens offline and draws; the atlas page renders.

The report is made from the bundled data and opened with the network blocked (every request that is not the
file itself fails the test), without JavaScript errors, with its Plotly figures drawn and its gallery images
decoded; and the Structure atlas page renders in the dashboard.

Skips without Chromium or Playwright, except under ``CI=true``, where a missing browser fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard_fixtures import make_fixture_assets
from tests.serving import CHROMIUM_ARGS, serve_dashboard
from tests.test_browser import _chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CKPTS = ROOT / "assets" / "checkpoints"
CHECKPOINTS = [CKPTS / "espcn-x2-l1-s0.safetensors", CKPTS / "espcn-x2-l1-gv-s0.safetensors"]
SWEEP = [CKPTS / "sweep" / f"espcn-x2-{n}-s0.safetensors" for n in ("l1-w0", "l1-gv-w0.1", "l1-gv-w1")]
TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _chromium()
    from dashboard.report import build_report, write_report

    text = build_report(
        CHECKPOINTS, "bundled", 2, "standard", sweep=SWEEP, top_k=3, images=["text", "coins"], command="test"
    )
    return write_report(text, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _watch(page: object, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """Abort and record every request not starting with ``allowed``; record page errors and console errors."""
    seen: dict[str, list[str]] = {"requests": [], "errors": []}

    def route(handled: object) -> None:
        url = handled.request.url  # type: ignore[attr-defined]
        if url.startswith(allowed):
            handled.continue_()  # type: ignore[attr-defined]
        else:
            seen["requests"].append(url)
            handled.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)  # type: ignore[attr-defined]
    page.on("pageerror", lambda err: seen["errors"].append(str(err)))  # type: ignore[attr-defined]
    page.on(  # type: ignore[attr-defined]
        "console", lambda msg: seen["errors"].append(msg.text) if msg.type == "error" else None
    )
    return seen


@pytest.fixture(scope="module")
def opened(browser: object, report: Path) -> Iterator[tuple[object, dict[str, list[str]]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1600})  # type: ignore[attr-defined]
    page = context.new_page()
    seen = _watch(page, (report.as_uri(), "data:", "blob:"))
    page.goto(report.as_uri(), wait_until="load")
    figures = page.locator(".plotly-graph-div").count()
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=figures,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=TIMEOUT_MS)
    yield page, seen
    context.close()


def test_report_makes_no_request(opened: tuple[object, dict[str, list[str]]]) -> None:
    assert opened[1]["requests"] == []


def test_report_has_no_javascript_error(opened: tuple[object, dict[str, list[str]]]) -> None:
    assert opened[1]["errors"] == []


def test_every_plotly_figure_is_drawn(opened: tuple[object, dict[str, list[str]]]) -> None:
    page = opened[0]
    figures = page.locator(".plotly-graph-div").count()  # type: ignore[attr-defined]
    drawn = page.locator(".js-plotly-plot .main-svg").evaluate_all(  # type: ignore[attr-defined]
        "els => new Set(els.map(e => e.closest('.js-plotly-plot'))).size"
    )
    assert figures >= 6
    assert drawn == figures


def test_gallery_images_are_decoded(opened: tuple[object, dict[str, list[str]]]) -> None:
    page = opened[0]
    widths = page.eval_on_selector_all(".gallery img", "els => els.map(e => e.naturalWidth)")  # type: ignore[attr-defined]
    assert len(widths) >= 3 * 4
    assert min(widths) > 0


def test_report_screenshot(opened: tuple[object, dict[str, list[str]]]) -> None:
    artifacts = ROOT / "tests" / "_artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    target = artifacts / "report.png"
    opened[0].screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
    assert target.stat().st_size > 10_000


# --- the Structure atlas page in the dashboard -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _chromium()
    assets = make_fixture_assets(tmp_path_factory.mktemp("assets"))
    env = {**os.environ, "GVLAB_ASSETS": str(assets), "GVLAB_RUNS": str(assets / "runs")}
    with serve_dashboard(env, tmp_path_factory.mktemp("server")) as running:
        yield running.url


def test_atlas_page_renders(browser: object, server: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})  # type: ignore[attr-defined]
    page = context.new_page()
    seen = _watch(page, (server, "data:", "blob:"))
    try:
        page.goto(f"{server}/atlas", wait_until="domcontentloaded")
        done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
        page.wait_for_selector(done, timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=TIMEOUT_MS
        )
        page.wait_for_selector(done, timeout=TIMEOUT_MS)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_text("Structure atlas").first.is_visible()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')].length >= 4 && "
            "[...document.querySelectorAll('[data-testid=\"stImage\"] img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=TIMEOUT_MS,
        )
        assert seen["requests"] == []
        artifacts = ROOT / "tests" / "_artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "atlas.png"), full_page=True)
    finally:
        context.close()


def test_per_image_table_sorts(opened: tuple[object, dict[str, list[str]]]) -> None:
    page = opened[0]
    table = page.locator("details table")  # type: ignore[attr-defined]
    table.locator("th", has_text="psnr").click()
    column = table.locator("th").all_text_contents().index("psnr")
    cells = table.locator("tbody tr").evaluate_all(f"rows => rows.map(r => r.cells[{column}].textContent)")
    values = [float(c) for c in cells if c.strip()]
    assert len(values) >= 4
    assert values == sorted(values)
