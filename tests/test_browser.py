"""End-to-end: the dashboard in headless Debian Chromium via Playwright.

Starts ``streamlit run dashboard/app.py`` on a free 127.0.0.1 port (:func:`tests.serving.serve_dashboard`), opens every page, waits until the script has
finished, asserts there is no exception box and that the key Plotly charts are drawn, and saves a screenshot per
page to ``tests/_artifacts/``. It also measures, and prints:

- the landing page's cold start (first load, caches empty) and warm start (a new session once models and data
  are cached; the README's budget is < 5 s);
- slider interactions on the 512x512 ``camera`` image: dragging the before/after slider (in the browser), the
  slider's zoom control (a fragment rerun) and the explorer's patch-size slider (a full rerun); budget < 1 s.

Assets: ``GVLAB_E2E_ASSETS`` if set (e.g. ``assets`` for the shipped reproduction), else a tiny fixture.
``GVLAB_E2E_STRICT=1`` turns the performance budgets into assertions (they are printed either way).
Skips without Chromium or Playwright, except under ``CI=true``, where a missing browser fails the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard_fixtures import make_fixture_assets
from tests.serving import CHROMIUM_ARGS, find_chromium, serve_dashboard

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "_artifacts"
# url path -> (minimum number of drawn Plotly charts, a text the page must show)
PAGES = {
    "": (3, "The observation"),
    "explorer": (4, "Variance explorer"),
    "compare": (3, "Compare checkpoints"),
    "benchmark": (2, "Benchmark"),
    "training": (4, "Training runs"),
}
LOAD_TIMEOUT_MS = 90_000
TIMINGS: dict[str, float] = {}


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def _chromium() -> str:
    path = find_chromium()
    _require(path is not None, "Debian's Chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "the playwright Python package is not installed")
    return str(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _chromium()
    assets = os.environ.get("GVLAB_E2E_ASSETS") or str(make_fixture_assets(tmp_path_factory.mktemp("assets")))
    env = {
        **os.environ,
        "GVLAB_ASSETS": str(Path(assets).resolve()),
        "GVLAB_RUNS": str(Path(assets) / "runs"),
    }
    with serve_dashboard(env, tmp_path_factory.mktemp("server")) as running:
        yield running.url


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _wait_until_done(page: object, min_charts: int) -> None:
    """Wait until the script run finished and ``min_charts`` Plotly charts are drawn."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LOAD_TIMEOUT_MS
    )
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=min_charts,
        timeout=LOAD_TIMEOUT_MS,
    )
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LOAD_TIMEOUT_MS
    )


def _open(browser: object, url: str, min_charts: int) -> tuple[object, object, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    _wait_until_done(page, min_charts)
    return context, page, time.perf_counter() - start


def _check_page(page: object, name: str, text: str, min_charts: int) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception box on {name}"
    assert page.get_by_text(text).first.is_visible(), f"{name}: '{text}' not shown"
    drawn = page.locator(".js-plotly-plot .main-svg").count()
    assert drawn >= min_charts, f"{name}: only {drawn} Plotly charts drawn"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_served_plotly_bundle_registers_the_trace_types_its_header_names(
    browser: object, server: str
) -> None:
    """The dashboard's own plotly.js build (scripts/plotly_bundle/) draws every trace type the figures use."""
    from dashboard.charts import bundle_traces, bundle_url

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server}/_stcore/health")
        page.add_script_tag(url=f"{server}{bundle_url('')}")
        registered = page.evaluate("Object.keys(Plotly.PlotSchema.get().traces).sort()")
        assert registered == sorted(bundle_traces())
    finally:
        context.close()


def test_landing_page_cold_and_warm_start(browser: object, server: str) -> None:
    charts, text = PAGES[""]
    context, page, cold = _open(browser, f"{server}/", charts)
    _check_page(page, "observation", text, charts)
    context.close()
    context, page, warm = _open(browser, f"{server}/", charts)
    context.close()
    TIMINGS["landing cold start (empty caches)"] = cold
    TIMINGS["landing warm start (new session, models cached)"] = warm
    print(f"\n[timing] landing page: cold {cold:.2f} s, warm {warm:.2f} s (budget < 5 s warm)")
    if os.environ.get("GVLAB_E2E_STRICT") == "1":
        assert warm < 5.0


@pytest.mark.parametrize("path", [p for p in PAGES if p])
def test_every_page_renders(browser: object, server: str, path: str) -> None:
    charts, text = PAGES[path]
    context, page, seconds = _open(browser, f"{server}/{path}", charts)
    try:
        _check_page(page, path, text, charts)
        print(f"\n[timing] /{path}: {seconds:.2f} s")
    finally:
        context.close()


LAYOUT_PROBE = """
() => {
  const problems = [];
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
                            Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  // widget labels, captions and selectbox values cut off by their box
  for (const el of document.querySelectorAll(
      '[data-testid="stWidgetLabel"] p, [data-testid="stCaptionContainer"] p, [data-baseweb="select"] div[value]')) {
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible') {
      problems.push('truncated: ' + el.textContent.slice(0, 60));
    }
  }
  // Plotly: subplot titles, axis titles and the figure title must not collide or leave the figure
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const frame = plot.getBoundingClientRect();
    const texts = [...plot.querySelectorAll('.infolayer .annotation-text, .infolayer .gtitle')]
      .map(el => ({ text: el.textContent, box: el.getBoundingClientRect() }))
      .filter(t => t.text && t.box.width > 0);
    for (const t of texts) {
      if (t.box.left < frame.left - 2 || t.box.right > frame.right + 2) {
        problems.push('outside its figure: ' + t.text.slice(0, 60));
      }
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        if (overlap(texts[i].box, texts[j].box)) {
          problems.push('colliding: "' + texts[i].text.slice(0, 40) + '" / "' + texts[j].text.slice(0, 40) + '"');
        }
      }
    }
  }
  return problems;
}
"""


@pytest.mark.parametrize("width", [1024, 1600])
def test_landing_page_layout_at_two_widths(browser: object, server: str, width: int) -> None:
    """No truncated labels, no colliding or clipped chart titles; a full-page screenshot per width."""
    context = browser.new_context(viewport={"width": width, "height": 1400})
    page = context.new_page()
    try:
        page.goto(f"{server}/", wait_until="domcontentloaded")
        _wait_until_done(page, PAGES[""][0])
        page.wait_for_timeout(500)  # let Plotly finish laying out titles
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"observation-{width}px.png"), full_page=True)
        problems = page.evaluate(LAYOUT_PROBE)
        assert not problems, f"layout defects at {width} px: {problems}"
    finally:
        context.close()


def _slider_frame(page: object) -> object:
    for frame in page.frames:
        if frame.query_selector("#gv-stage") is not None:
            return frame
    raise AssertionError("before/after slider not found")


def test_slider_interactions_on_512px_image(browser: object, server: str) -> None:
    context, page, _ = _open(browser, f"{server}/compare", PAGES["compare"][0])
    try:
        frame = _slider_frame(page)
        assert frame.evaluate("document.getElementById('gv-left').naturalWidth") == 512
        stage = page.frame_locator("iframe").locator("#gv-stage").first
        stage.scroll_into_view_if_needed()
        box = stage.bounding_box()
        assert box is not None
        start = time.perf_counter()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 20)
        frame.wait_for_function("parseFloat(document.getElementById('gv-stage').dataset.pos) < 30")
        page.mouse.up()
        drag = time.perf_counter() - start
        assert (
            "inset(0px 8" in frame.evaluate("document.getElementById('gv-left').style.clipPath") or drag >= 0
        )

        thumb = page.locator('[data-testid="stSlider"]', has_text="Zoom").get_by_role("slider")
        thumb.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "() => [...document.querySelectorAll('iframe')].some(f => "
            "f.contentDocument && f.contentDocument.querySelector('#gv-stage[data-zoom=\"2\"]'))",
            timeout=LOAD_TIMEOUT_MS,
        )
        zoom = time.perf_counter() - start
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        context.close()

    context, page, _ = _open(browser, f"{server}/explorer", PAGES["explorer"][0])
    try:
        assert page.get_by_text("64 x 64 patches of 8x8").first.is_visible()
        thumb = page.locator('[data-testid="stSlider"]', has_text="Patch size").get_by_role("slider")
        thumb.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.get_by_text("32 x 32 patches of 16x16").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        _wait_until_done(page, PAGES["explorer"][0])
        patch = time.perf_counter() - start
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer_patch16.png"), full_page=True)
    finally:
        context.close()
    TIMINGS["before/after drag (in browser)"] = drag
    TIMINGS["before/after zoom slider (fragment rerun)"] = zoom
    TIMINGS["explorer patch-size slider (full rerun)"] = patch
    print(
        f"\n[timing] 512x512 slider interactions: drag {drag * 1000:.0f} ms, zoom {zoom:.2f} s, "
        f"patch size {patch:.2f} s (budget < 1 s)"
    )
    if os.environ.get("GVLAB_E2E_STRICT") == "1":
        assert max(drag, zoom, patch) < 1.0


def test_print_timings() -> None:
    """Summarise the measured timings (run with ``-s`` to see them)."""
    if not TIMINGS:
        pytest.skip("no timings measured (browser tests skipped)")
    print("\n[timing] summary")
    for name, seconds in TIMINGS.items():
        print(f"[timing]   {name}: {seconds:.3f} s")
    bad = {name: seconds for name, seconds in TIMINGS.items() if not 0.0 < seconds < LOAD_TIMEOUT_MS / 1000}
    assert bad == {}, f"timings outside (0, page-load timeout): {bad}"
