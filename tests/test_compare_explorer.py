"""Compare and Variance explorer: the "make the GV effect visible" behaviour under ``AppTest``.

Small images do not crash, a too-large image is compared on a region, uploads and run directories are named by
what they are, the deficit colours say blue = lost, the explorer's padding, image and second-image handling;
plus the pure builders behind them (slider views, deficit colour scale, wrapped crop grid).

Assets are the tiny stand-in of :mod:`tests.dashboard_fixtures` (``GVLAB_ASSETS`` points at it).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from dashboard import loaders, state
from dashboard.analysis import difference_image, signed_difference
from dashboard.compare_slider import slider_html
from dashboard.figures.axes import with_wrapped_titles, wrap_title
from dashboard.figures.images import crop_grid
from dashboard.figures.maps import heatmap_grid
from tests.dashboard_fixtures import charts, image_sized_arrays, make_fixture_assets, rect_png, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 180


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_fixture_assets(tmp_path_factory.mktemp("assets"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(root))
        patch.setenv("GVLAB_RUNS", str(root / "runs"))
        yield root


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(f"../pages/{page}.py").run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, texts(at.error)


def texts(elements: object) -> str:
    return " | ".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def random_png(width: int, height: int, seed: int) -> bytes:
    return png_bytes(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def chart_spec(at: AppTest, key: str) -> dict:
    for chart in charts(at):
        if chart.id.endswith(f"-{key}"):
            return chart.figure
    raise AssertionError(f"no chart with key {key!r}")


def array(value: object) -> np.ndarray:
    """A Plotly JSON array: a plain list, or plotly's typed form ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", flat.size)).split(",")]
        return flat.reshape(shape).astype(float)
    return np.asarray(value, dtype=float)


def methods(at: AppTest) -> list[str]:
    return list(tables(at)[0].value["method"])


def upload_compare_image(at: AppTest, name: str, data: bytes) -> None:
    at.radio(key="cmp-source").set_value("Upload").run()
    at.file_uploader(key="cmp-upload").upload(name, data, "image/png")
    at.run()


def checkpoint_bytes(tmp_path: Path, label: str | None = "my espcn") -> bytes:
    import gvcore

    path = tmp_path / "saved.safetensors"
    gvcore.save_checkpoint(path, gvcore.build_model("espcn", 2), label=label)
    return path.read_bytes()


# --- Compare -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(100, 80), (48, 40), (32, 32)])
def test_small_images_render_on_compare(assets: Path, size: tuple[int, int]) -> None:
    at = open_page("compare")
    upload_compare_image(at, "small.png", random_png(*size, seed=1))
    assert_clean(at)
    assert methods(at) == [
        "HR",
        "bicubic",
        "ESPCN L1 x2",
        "ESPCN L1+GV x2",
    ]  # HR is a row of every comparison
    chart_spec(at, "cmp-crops")  # the crop figure is drawn whatever the size


def test_too_large_image_is_compared_on_a_region(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "MAX_OUTPUT_PIXELS", 40_000)  # camera at x2: 512x512 = 262,144 output pixels
    at = open_page("compare")
    assert_clean(at)
    assert "over the limit of 40,000" in texts(at.info)
    captions = texts(at.caption)
    assert "Showing the region" in captions
    assert "100x100 LR pixels, 200x200 output pixels" in captions
    assert len(methods(at)) == 4  # HR, bicubic and the pair
    width = next(n for n in at.number_input if n.label.startswith("w "))
    width.set_value(50).run()
    assert_clean(at)
    assert "50x100 LR pixels, 100x200 output pixels" in texts(at.caption)


def test_uploaded_checkpoints_are_named_by_file_and_architecture(assets: Path, tmp_path: Path) -> None:
    import gvcore

    foreign = io.BytesIO()
    torch.save(gvcore.build_model("espcn", 2).state_dict(), foreign)
    at = open_page("compare")
    for name, data in (
        ("mine.safetensors", checkpoint_bytes(tmp_path)),
        ("their_espcn_x2.pth", foreign.getvalue()),
    ):
        at.file_uploader(key="cmp-uploads").upload(name, data, "application/octet-stream")
    at.run()
    assert_clean(at)
    names = methods(at)
    assert "my espcn · mine.safetensors (ESPCN)" in names
    assert "their_espcn_x2.pth (ESPCN)" in names
    assert not any("gvlab-upload" in n for n in names)


def test_run_directories_are_offered_when_scale_and_protocol_match(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gvcore

    runs = tmp_path / "runs"
    for name, scale, config in (
        ("labelled", 2, {"label": "my run", "protocol": "standard"}),
        ("unlabelled", 2, {}),  # no label: the folder name; no protocol: standard
        ("official-run", 2, {"label": "official run", "protocol": "official"}),
        ("x4-run", 4, {"label": "x4 run", "protocol": "standard"}),
    ):
        run = runs / "mine" / name
        run.mkdir(parents=True)
        gvcore.save_checkpoint(run / "last.safetensors", gvcore.build_model("espcn", scale))
        (run / "config.json").write_text(json.dumps({"arch": "espcn", "scale": scale, **config}))
        (run / "log.csv").write_text("step,loss\n0,1.0\n")
    monkeypatch.setenv("GVLAB_RUNS", str(runs))
    at = open_page("compare")
    assert_clean(at)
    offered = at.multiselect(key="cmp-runs-standard-2")
    assert sorted(offered.options) == ["my run", "unlabelled"]
    offered.set_value(["my run"]).run()
    assert_clean(at)
    assert "my run" in methods(at)
    at.radio(key="cmp-protocol").set_value("official").run()
    assert at.multiselect(key="cmp-runs-official-2").options == ["official run"]


def test_deficit_colour_bar_is_blue_for_lost_variance(assets: Path) -> None:
    at = open_page("compare")
    spec = chart_spec(at, "cmp-deficit")
    assert "blue = variance lost" in spec["layout"]["title"]["text"]
    trace = spec["data"][0]
    assert trace["zmin"] < 0 < trace["zmax"]
    low, high = trace["colorscale"][0][1], trace["colorscale"][-1][1]
    r, _g, b = map(int, re.findall(r"\d+", low))
    assert b > r, f"the lowest deficit (variance lost) must be blue, got {low}"
    r, _g, b = map(int, re.findall(r"\d+", high))
    assert r > b, f"the highest deficit (variance gained) must be red, got {high}"
    assert "blue = lost" in trace["colorbar"]["title"]["text"]


# --- Variance explorer ---------------------------------------------------------------------------------------
def test_explorer_shows_the_image_and_padding_changes_the_maps(assets: Path) -> None:
    at = open_page("variance_explorer")
    assert_clean(at)
    assert "camera (512x512)" in json.dumps(chart_spec(at, "vx-image"))
    before = array(chart_spec(at, "vx-var-gx")["data"][0]["z"])
    at.selectbox(key="vx-padding").set_value("replicate").run()
    assert_clean(at)
    after = array(chart_spec(at, "vx-var-gx")["data"][0]["z"])
    assert before.shape == after.shape
    assert not np.allclose(before, after)
    assert "replicate padding" in texts(at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.endswith("camera_p8_sobel_replicate_variance_gx.npy") for label in labels), labels


def test_explorer_sizes_are_width_by_height(assets: Path) -> None:
    at = open_page("variance_explorer")
    at.radio(key="vx-source").set_value("Upload").run()
    at.file_uploader(key="vx-upload").upload("wide.png", random_png(48, 40, seed=3), "image/png")
    at.run()
    assert_clean(at)
    assert "6 x 5 patches of 8x8 pixels, stride 8, from a 48x40 image" in texts(at.caption)


def test_histogram_highlight_follows_the_slider(assets: Path) -> None:
    at = open_page("variance_explorer")
    highlight = at.slider(key="vx-range")
    chosen = (round(highlight.min + 0.5, 1), round(highlight.min + 1.5, 1))
    highlight.set_value(chosen).run()
    assert_clean(at)
    shape = chart_spec(at, "vx-hist-select")["layout"]["shapes"][0]
    assert (shape["x0"], shape["x1"]) == pytest.approx(chosen)
    assert f"[{chosen[0]:.1f}, {chosen[1]:.1f}]" in texts(at.caption)


def second_uploader(at: AppTest) -> Any:
    return next(u for u in at.file_uploader if u.label.startswith("SR output"))


def gv_metrics(at: AppTest) -> list[str]:
    return [m.label for m in at.metric if m.label.startswith("GV loss")]


def test_switching_the_image_source_clears_second_image_metrics(assets: Path) -> None:
    at = open_page("variance_explorer")
    at.radio(key="vx-source").set_value("Upload").run()
    at.file_uploader(key="vx-upload").upload("first.png", random_png(48, 40, seed=4), "image/png")
    at.run()
    at.radio(key="vx-second").set_value("an uploaded SR output").run()
    second_uploader(at).upload("sr.png", random_png(48, 40, seed=5), "image/png")
    at.run()
    assert_clean(at)
    assert gv_metrics(at)
    at.file_uploader(key="vx-upload").upload("other.png", random_png(48, 40, seed=6), "image/png")
    at.run()
    assert_clean(at)
    assert not gv_metrics(at), "an SR output of the previous image is still scored against the new one"
    second_uploader(at).upload("sr.png", random_png(48, 40, seed=5), "image/png")
    at.run()
    assert gv_metrics(at)
    at.radio(key="vx-source").set_value("Bundled sample").run()
    assert_clean(at)
    assert not gv_metrics(at)


# --- the pure builders ---------------------------------------------------------------------------------------
def test_slider_views_embed_readout_and_difference() -> None:
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    page = slider_html(left, right, "A", "B", mode="difference", difference_factor=8, state_key="k")
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[-1]))))
    np.testing.assert_array_equal(shown, difference_image(signed_difference(left, right), 8))
    assert "(A - B) x8" in page
    assert "grey = identical" in page
    assert 'data-key="k"' in page
    assert 'id="gv-readout"' in page
    flicker = slider_html(left, right, "A", "B", mode="flicker", flicker_ms=250)
    assert 'data-mode="flicker"' in flicker
    assert 'data-interval="250"' in flicker
    assert len(re.findall(r'src="data:image/png', flicker)) == 2
    with pytest.raises(ValueError, match="mode"):
        slider_html(left, right, "A", "B", mode="blink")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        slider_html(left, right, "A", "B", mode="difference", difference_factor=0)


def test_crop_grid_wraps_many_methods_into_rows() -> None:
    images = {f"a rather long method name number {i}": np.zeros((32, 32, 3), np.uint8) for i in range(7)}
    fig = crop_grid(images, (4, 4, 8, 8), next(iter(images)), columns=4)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 8
    assert all(len(line) <= 18 for t in titles for line in t.split("<br>"))
    assert len(fig.data) == 8
    assert fig.layout.height == 2 * 260


def test_long_method_names_are_wrapped_in_every_grid() -> None:
    long_name = "another_run_lambda_0.1_seed_2.safetensors (ESPCN)"
    assert wrap_title(long_name).split("<br>") == [
        "another_run_",
        "lambda_0.1_seed_2.",
        "safetensors…",
    ]
    grid = heatmap_grid({long_name: np.zeros((4, 4)), "HR": np.ones((4, 4))}, title="maps")
    wrapped = with_wrapped_titles(grid)
    assert grid.layout.annotations[0].text == long_name  # the input figure is not changed
    assert wrapped.layout.annotations[0].text.count("<br>") == 2
    assert wrapped.layout.margin.t > grid.layout.margin.t


def test_compare_session_keeps_no_image_sized_arrays(assets: Path) -> None:
    """Once the caches let go, a finished Compare run leaves nothing the size of its outputs in the session.

    The before/after fragment used to take the 8-bit outputs as its argument and, being defined in the page
    script, kept every array of the page through its globals.
    """
    at = open_page("compare")
    upload_compare_image(at, "r.png", rect_png(3, 184, 248))
    assert_clean(at)
    at.radio(key="cmp-view").set_value("difference").run()
    assert_clean(at)
    loaders.DATA_CACHE.clear()
    loaders.MODEL_CACHE.clear()
    assert image_sized_arrays(184, 248) == []


def test_compare_shows_every_output_in_the_viewer(assets: Path) -> None:
    """The "All outputs" view: one shared view of every output with HR's deficit overlay, keeping no arrays."""
    at = open_page("compare")
    upload_compare_image(at, "r.png", rect_png(3, 184, 248))
    at.radio(key="cmp-view").set_value("viewer").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Keys 1-" in texts(at.caption)
    assert_clean(at)


def test_before_after_offers_a_rerun_when_its_outputs_left_the_cache() -> None:
    def section_without_outputs() -> None:
        from dashboard import before_after

        before_after.before_after(before_after.images_key("evicted long ago"))

    at = AppTest.from_function(section_without_outputs).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "left the server's cache" in texts(at.info)
    assert at.button(key="cmp-recompute").label == "Compute them again"
