"""The N-output viewer (dashboard/viewer.py): its inputs, its overlay, and in headless Chromium wheel zoom, keys, hover."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.viewer import deficit_overlay, viewer_html


def _images(count: int, size: tuple[int, int] = (48, 64)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {f"m{i}": (rng.random((*size, 3)) * 255).astype(np.uint8) for i in range(count)}


def test_viewer_refuses_what_it_cannot_show() -> None:
    with pytest.raises(ValueError, match="1 to 9 images"):
        viewer_html({})
    with pytest.raises(ValueError, match="1 to 9 images"):
        viewer_html(_images(10))
    mixed = _images(2) | {"small": np.zeros((8, 8, 3), np.uint8)}
    with pytest.raises(ValueError, match="one size"):
        viewer_html(mixed)


def test_overlay_is_blue_where_variance_is_lost_and_red_where_it_is_added() -> None:
    hr = _images(1, (32, 32))["m0"]
    flat = np.full_like(hr, 128)
    assert deficit_overlay(flat, hr)[..., 2].min() > deficit_overlay(flat, hr)[..., 0].max()  # blue
    noisy = np.clip(hr.astype(int) + np.random.default_rng(1).normal(0, 60, hr.shape), 0, 255).astype(
        np.uint8
    )
    smooth = np.full_like(hr, 100)
    red = deficit_overlay(noisy, smooth)
    assert (red[..., 0] > red[..., 2]).all()  # variance added where HR (flat) has none
    assert deficit_overlay(hr, hr).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        deficit_overlay(hr.astype(np.float32), hr)  # type: ignore[arg-type]


def test_the_html_embeds_everything_and_requests_nothing() -> None:
    page = viewer_html(_images(3), {"m1": np.zeros((6, 8, 3), np.uint8)})
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page
    assert "https://" not in page
    assert "1 · m0" in page
    assert "3 · m2" in page


@pytest.mark.browser
def test_wheel_zooms_keys_switch_and_hover_reads_every_output() -> None:
    from tests.test_browser import CHROMIUM_ARGS, _chromium

    chromium = _chromium()  # skips without Chromium/Playwright, fails under CI=true
    from playwright.sync_api import sync_playwright

    images = _images(3)
    overlays = {name: deficit_overlay(img, images["m0"]) for name, img in images.items()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 900, "height": 800}).new_page()
            page.set_content(viewer_html(images, overlays, height=400))
            page.wait_for_function("window.gvViewer && window.gvViewer.state().zoom > 0")
            fitted = page.evaluate("window.gvViewer.state()")
            width = page.evaluate("document.getElementById('wrap').clientWidth")
            assert fitted["zoom"] == pytest.approx(width / 64)  # fit to width
            box = page.locator("#wrap").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 100, box["y"] + 100)
            page.mouse.wheel(0, -400)  # zoom in about the cursor
            page.wait_for_function(f"window.gvViewer.state().zoom > {fitted['zoom'] * 1.5}")
            assert page.evaluate("window.scrollY") == 0  # the wheel zoomed the image, not the page
            page.keyboard.press("2")
            zoomed = page.evaluate("window.gvViewer.state()")
            assert zoomed["index"] == 1
            page.keyboard.press("3")
            assert page.evaluate("window.gvViewer.state()")["index"] == 2
            assert page.evaluate("window.gvViewer.state()")["zoom"] == zoomed["zoom"]  # the view is shared
            page.mouse.move(box["x"] + 20, box["y"] + 20)
            readout = page.locator("#read").inner_text()
            assert readout.startswith("x ")
            assert "1 m0:" in readout
            assert "3 m2:" in readout
            page.locator("#op").fill("50")
            assert page.evaluate("window.gvViewer.state()")["opacity"] == pytest.approx(0.5)
            page.mouse.move(box["x"] + 200, box["y"] + 200)
            page.mouse.down()
            page.mouse.move(box["x"] + 260, box["y"] + 230)
            page.mouse.up()
            panned = page.evaluate("window.gvViewer.state()")
            assert panned["x"] - zoomed["x"] == pytest.approx(60)  # drag pans
            page.keyboard.press("0")
            assert page.evaluate("window.gvViewer.state()")["zoom"] == pytest.approx(fitted["zoom"])
        finally:
            browser.close()
