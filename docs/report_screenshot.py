"""Make ``docs/report.png``, the README's screenshot of a ``gvcore report``.

Run from the repository root (needs Debian's Chromium and Playwright)::

    gvcore report --ckpt assets/checkpoints/espcn-x2-l1-s0.safetensors \
        --ckpt assets/checkpoints/espcn-x2-l1-gv-s0.safetensors --data bundled --scale 2 --top-k 3 \
        --out /tmp/report.html --force
    python docs/report_screenshot.py /tmp/report.html docs/report.png

The screenshot shows the top of the report (metric table, paired statistics) and the first gallery cards, with the
network blocked as in ``tests/test_browser_report.py``; it is saved as an optimised palette PNG (< 300 KB).
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from PIL import Image

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def capture(report: Path, width: int = 1280) -> tuple[Image.Image, Image.Image]:
    """The report's top and its gallery heading onwards, each one viewport high, as RGB images."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
        )
        page.goto(report.resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 3")
        tables_end = page.evaluate(
            "() => document.querySelectorAll('table')[1].getBoundingClientRect().bottom"
        )
        top = Image.open(
            io.BytesIO(page.screenshot(clip={"x": 0, "y": 0, "width": width, "height": tables_end + 16}))
        )
        y = page.evaluate(
            "() => [...document.querySelectorAll('h2')].find(h => h.textContent === 'Atlas gallery').offsetTop"
        )
        gallery = Image.open(
            io.BytesIO(page.screenshot(full_page=True, clip={"x": 0, "y": y, "width": width, "height": 560}))
        )
        browser.close()
    return top.convert("RGB"), gallery.convert("RGB")


def main(report: str, out: str) -> None:
    """Stack the two views at full resolution (text stays legible), quantize to 256 colours and save."""
    top, gallery = capture(Path(report))
    sheet = Image.new("RGB", (top.width, top.height + gallery.height), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(gallery, (0, top.height))
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
