"""The dashboard under ``streamlit.testing.v1.AppTest``.

Every page runs on fixture assets and without assets, widgets change the output, and bad uploads show
``st.error`` while the rest of the page keeps working.

The assets are a tiny stand-in made by :mod:`tests.dashboard_fixtures` (``GVLAB_ASSETS`` points at it), so the
tests neither need nor touch the bundled reproduction.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.dashboard_fixtures import charts as shown_charts
from tests.dashboard_fixtures import open_details, serving_environment, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES = ("observation", "variance_explorer", "compare", "benchmark", "training_runs")
TIMEOUT = 120


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with serving_environment(tmp_path_factory, data_roots=True) as root:
        yield root


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    if page != "observation":
        at.switch_page(f"../pages/{page}.py").run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def charts(at: AppTest) -> int:
    return len(shown_charts(at))


def texts(elements: object) -> str:
    return " | ".join(str(e.value) for e in elements)  # type: ignore[attr-defined]


# --- every page, with and without assets ---------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_fixture_assets(assets: Path, page: str) -> None:
    at = open_page(page)
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert charts(at) >= 1
    if page == "observation":
        table = tables(at)[0].value
        assert list(table["method"]) == ["HR", "bicubic", "bicubic+noise", "ESPCN L1 x2", "ESPCN L1+GV x2"]
        assert np.isfinite(table["psnr"].iloc[1:]).all()


@pytest.mark.parametrize("page", PAGES)
def test_page_explains_missing_assets(assets: Path, tmp_path: Path, page: str) -> None:
    saved = os.environ["GVLAB_ASSETS"], os.environ["GVLAB_RUNS"]
    os.environ["GVLAB_ASSETS"], os.environ["GVLAB_RUNS"] = str(tmp_path), str(tmp_path / "runs")
    try:
        at = open_page(page)
    finally:
        os.environ["GVLAB_ASSETS"], os.environ["GVLAB_RUNS"] = saved
    assert_clean(at)
    assert not at.error, texts(at.error)
    if page != "variance_explorer":  # the explorer needs no assets
        assert at.info, f"{page} should explain that the bundled assets are missing"


# --- widgets change the output -------------------------------------------------------------------------------
def test_patch_size_changes_variance_map_shape(assets: Path) -> None:
    at = open_page("variance_explorer")
    assert "64 x 64 patches of 8x8" in texts(at.caption)
    at.select_slider(key="vx-patch").set_value(16).run()
    assert_clean(at)
    assert "32 x 32 patches of 16x16" in texts(at.caption)
    at.toggle(key="vx-overlap").set_value(True).run()
    at.select_slider(key="vx-stride").set_value(4).run()
    assert "125 x 125 patches of 16x16 pixels, stride 4" in texts(at.caption)


def test_degraded_copy_shows_deficit_and_gv_loss(assets: Path) -> None:
    at = open_page("variance_explorer")
    before = charts(at)
    at.radio(key="vx-second").set_value("a degraded copy").run()
    assert_clean(at)
    assert charts(at) == before + 1
    gv = next(m for m in at.metric if m.label.startswith("GV loss"))
    assert float(gv.value) > 0
    highlight = at.slider(key="vx-range")
    highlight.set_value((highlight.min, highlight.max)).run()
    assert "patches highlighted" in texts(at.caption)


def test_compare_lr_only_hides_reference_metrics(assets: Path) -> None:
    at = open_page("compare")
    assert "psnr" in tables(at)[0].value.columns
    at.radio(key="cmp-mode").set_value("LR only (no reference)").run()
    assert_clean(at)
    columns = tables(at)[0].value.columns
    assert "psnr" not in columns
    assert "var_gx" in columns


# --- uploads: good and bad images ----------------------------------------------------------------------------
def _upload_image(name: str, data: bytes) -> AppTest:
    at = open_page("variance_explorer")
    at.radio(key="vx-source").set_value("Upload").run()
    at.file_uploader(key="vx-upload").upload(name, data, "image/png")
    at.run()
    assert_clean(at)
    return at


rng = np.random.default_rng(0)
GOOD_UPLOADS = {
    "rgb.png": png_bytes(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)),
    "gray.png": png_bytes(rng.integers(0, 256, (40, 48), dtype=np.uint8)),
    "rgba.png": png_bytes(rng.integers(0, 256, (40, 48, 4), dtype=np.uint8)),
    "gray16.png": png_bytes(rng.integers(0, 65536, (40, 48), dtype=np.uint16)),
}


@pytest.mark.parametrize("name", list(GOOD_UPLOADS))
def test_good_image_uploads_are_analysed(assets: Path, name: str) -> None:
    at = _upload_image(name, GOOD_UPLOADS[name])
    assert not at.error, texts(at.error)
    assert "6 x 5 patches of 8x8 pixels" in texts(at.caption)


BAD_UPLOADS = {
    "truncated.png": (GOOD_UPLOADS["rgb.png"][:200], "truncated.png"),
    "not_an_image.png": (b"hello, I am text pretending to be a PNG", "not_an_image.png"),
    "empty.png": (b"", "empty"),
    "tiny.png": (png_bytes(np.zeros((8, 8, 3), dtype=np.uint8)), "8x8"),
}


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_image_uploads_show_an_error(assets: Path, name: str) -> None:
    data, expected = BAD_UPLOADS[name]
    at = _upload_image(name, data)
    assert at.error, f"no st.error for {name}"
    message = texts(at.error)
    assert name in message
    assert expected.split(".")[0] in message
    assert at.select_slider(key="vx-patch").value == 8  # the controls are still there


def test_large_image_is_downsampled_for_display_with_a_note(assets: Path) -> None:
    yy, xx = np.mgrid[0:2000, 0:2400]
    smooth = ((np.sin(xx / 37.0) + np.cos(yy / 23.0)) * 60 + 128).astype(np.uint8)
    at = _upload_image("large.png", png_bytes(np.stack([smooth] * 3, axis=-1)))
    assert not at.error, texts(at.error)
    captions = texts(at.caption)
    assert "300 x 250 patches" in captions
    assert "2400x2000 pixels; shown downsampled by 10x" in captions
    assert "shown averaged over 2x2 patch blocks" in captions


def test_image_over_the_pixel_limit_is_refused(assets: Path) -> None:
    os.environ["GVLAB_MAX_PIXELS"] = "1000"
    try:
        at = _upload_image("big.png", GOOD_UPLOADS["rgb.png"])
    finally:
        os.environ.pop("GVLAB_MAX_PIXELS")
    assert at.error
    assert "big.png" in texts(at.error)


# --- uploads: checkpoints ------------------------------------------------------------------------------------
class _Hostile:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(Path(os.environ["GVLAB_ASSETS"]) / "pwned"),))


def _checkpoint_bytes(tmp_path: Path, arch: str, scale: int) -> bytes:
    import gvcore

    path = tmp_path / f"{arch}_x{scale}.safetensors"
    gvcore.save_checkpoint(path, gvcore.build_model(arch, scale), label=f"my {arch}")
    return path.read_bytes()


def _upload_checkpoints(files: list[tuple[str, bytes]]) -> AppTest:
    at = open_page("compare")
    for name, data in files:
        at.file_uploader(key="cmp-uploads").upload(name, data, "application/octet-stream")
    at.run()
    assert_clean(at)
    return at


def test_good_checkpoint_upload_joins_the_comparison(assets: Path, tmp_path: Path) -> None:
    at = _upload_checkpoints([("mine.safetensors", _checkpoint_bytes(tmp_path, "espcn", 2))])
    assert not at.error, texts(at.error)
    assert "my espcn · mine.safetensors (ESPCN)" in list(tables(at)[0].value["method"])


def test_bad_checkpoint_uploads_show_errors_and_page_keeps_working(assets: Path, tmp_path: Path) -> None:
    hostile = io.BytesIO()
    torch.save({"weight": torch.zeros(1), "evil": _Hostile()}, hostile)
    unknown = io.BytesIO()
    torch.save({"mystery.layer.weight": torch.zeros(3, 3)}, unknown)
    files = [
        ("hostile.pth", hostile.getvalue()),
        ("unknown.pth", unknown.getvalue()),
        ("x4.safetensors", _checkpoint_bytes(tmp_path, "espcn", 4)),
        ("garbage.safetensors", b"\x00" * 64),
        ("notes.pth", pickle.dumps("just a string")),
    ]
    at = _upload_checkpoints(files)
    message = texts(at.error)
    for name, _ in files:
        assert name in message, f"no error naming {name}: {message}"
    assert not (Path(os.environ["GVLAB_ASSETS"]) / "pwned").exists(), "the hostile pickle was executed"
    assert charts(at) >= 4  # the bundled comparison is still drawn
    assert list(tables(at)[0].value["method"]) == ["HR", "bicubic", "ESPCN L1 x2", "ESPCN L1+GV x2"]
    # refusals are remembered: a widget click shows them again without loading the files again
    assert len(at.session_state["cmp-refused-uploads"]) == len(files)
    at.checkbox(key="cmp-bicubic").uncheck().run()
    assert all(name in texts(at.error) for name, _ in files)
    assert len(at.session_state["cmp-refused-uploads"]) == 5


# --- benchmark: live evaluation and folder confinement -------------------------------------------------------
def test_live_benchmark_on_a_server_folder(assets: Path) -> None:
    at = open_page("benchmark")
    at.radio(key="bm_source").set_value("server folder").run()
    at.text_input(key="bm_sub").set_value("../..").run()
    assert "outside the allowed folder" in texts(at.error)
    at.text_input(key="bm_sub").set_value("set").run()
    assert not at.error
    at.button(key="live-run").click().run()
    assert_clean(at)
    open_details(at, "live-per-image-open")
    per_image = tables(at)[-1].value
    assert set(per_image["image"]) == {"img0", "img1"}
    assert set(per_image["method"]) == {
        "HR",
        "bicubic",
        "ESPCN L1 x2",
        "ESPCN L1+GV x2",
    }  # gvcore eval's rows
    from gvcore.eval.evaluate import evaluate

    ckpts = sorted((assets / "checkpoints").glob("*.safetensors"))
    image = Path(os.environ["GVLAB_DATA_ROOTS"]) / "set" / "img0.png"
    want = evaluate(ckpts, image, 2, "standard", progress=False).set_index("method")
    shown = per_image[per_image["image"] == "img0"].set_index("method")
    for method in want.index.drop("HR"):
        assert abs(shown.loc[method, "psnr"] - want.loc[method, "psnr"]) < 1e-9  # the same numbers


def test_explorer_bounds_patches_and_downloads(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting can make the explorer compute or send an unbounded amount of data."""
    from dashboard import state

    monkeypatch.setattr(state, "MAX_DOWNLOAD_BYTES", 1000)
    at = open_page("variance_explorer")
    assert_clean(at)
    assert "a page download may carry" in texts(at.info)
    assert not [b for b in at.get("download_button") if getattr(b, "key", None) == "vx-dl"]
    monkeypatch.setattr(state, "MAX_PATCHES", 100)
    at.run()
    assert "over the limit of 100" in texts(at.error)


# --- what a finished page leaves in its session --------------------------------------------------------------
ALL_PAGES = sorted(p.stem for p in (ROOT / "pages").glob("[!_]*.py"))


@pytest.mark.parametrize("page", ALL_PAGES)
def test_a_finished_page_keeps_no_data_in_its_session(assets: Path, page: str) -> None:
    """No page's globals outlive its run with data in them.

    Any function a page script creates (a ``format_func`` lambda, a callback, a fragment) refers to the page's
    globals, and the session keeps widget metadata and fragments after the run (disconnected sessions too, for
    a while). So a page's data would stay resident past every cache bound: 23 arrays of a Compare run were
    still alive through a ``format_func`` lambda before this was fixed.
    """
    import gc
    import types

    from dashboard import loaders
    from dashboard.bounded_cache import nbytes

    at = open_page(page)
    assert_clean(at)
    loaders.DATA_CACHE.clear()
    loaders.MODEL_CACHE.clear()
    gc.collect()
    held = {}
    pages_dir = str(ROOT / "pages")
    for obj in gc.get_objects():
        if type(obj) is dict and str(obj.get("__file__", "")).startswith(pages_dir):
            for name, value in obj.items():
                if name.startswith("__") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
                    continue
                if nbytes(value) > 64 * 1024:
                    held[f"{Path(obj['__file__']).stem}.{name}"] = nbytes(value)
    assert held == {}
