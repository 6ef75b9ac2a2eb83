"""Unit tests of the dashboard's plain modules; no Streamlit server needed.

Safety checks, the offline slider, pure figure builders, downloads, the paper table parser and the analysis
functions.
"""

from __future__ import annotations

import base64
import copy
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from dashboard import analysis, catalog, downloads
from dashboard.compare_slider import png_data_uri, slider_html
from dashboard.figures.bars import mean_variance_bars, metric_bars
from dashboard.figures.curves import sweep_figure, training_curves
from dashboard.figures.histograms import histogram_overlay
from dashboard.figures.images import crop_figure, image_grid
from dashboard.figures.maps import deficit_overlay, heatmap_grid, variance_heatmap
from dashboard.figures.paired import gain_scatter
from dashboard.safety import (
    UploadError,
    check_suffix,
    decode_image_upload,
    list_images_under,
    load_checkpoint_upload,
    resolve_under_root,
)

ROOT = Path(__file__).resolve().parents[1]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# --- safety --------------------------------------------------------------------------------------------------
def test_check_suffix_names_the_file_and_the_valid_types() -> None:
    assert check_suffix("a.PNG", (".png",), "image") == ".png"
    with pytest.raises(
        UploadError, match=r"notes\.txt: not a supported image file \(\.txt\); use one of \.png"
    ):
        check_suffix("notes.txt", (".png",), "image")


def test_decode_image_upload_accepts_gray_and_16_bit() -> None:
    gray16 = np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 20
    image = decode_image_upload("g.png", png(gray16), max_pixels=10_000)
    assert image.shape == (1, 3, 40, 48)
    assert image.dtype == torch.float32
    assert float(image.max()) <= 1.0


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("a.txt", b"text", "not a supported image"),
        ("a.png", b"", "empty"),
        ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "a.png"),
        ("a.png", png(np.zeros((8, 8, 3), np.uint8)), "8x8 pixels; at least 16x16"),
        ("a.png", png(np.zeros((200, 200, 3), np.uint8)), "a.png"),
    ],
)
def test_decode_image_upload_refuses_bad_files(name: str, data: bytes, match: str) -> None:
    with pytest.raises(UploadError, match=match):
        decode_image_upload(name, data, max_pixels=10_000)


def test_hostile_pickle_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.mkdir, (marker,))  # type: ignore[return-value]

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1), "x": Hostile()}, buffer)
    with pytest.raises(UploadError, match=r"evil\.pth"):
        load_checkpoint_upload("evil.pth", buffer.getvalue(), scale=2)
    assert not marker.exists()


def test_checkpoint_of_another_scale_is_refused(tmp_path: Path) -> None:
    import gvcore

    path = gvcore.save_checkpoint(tmp_path / "m.safetensors", gvcore.build_model("espcn", 4))
    with pytest.raises(UploadError, match=r"m\.safetensors"):
        load_checkpoint_upload("m.safetensors", path.read_bytes(), scale=2)
    loaded = load_checkpoint_upload("m.safetensors", path.read_bytes(), scale=4)
    assert loaded.label == "m (uploaded)"
    assert loaded.model.scale == 4


def test_folder_browsing_is_confined_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "sub" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "secret" / "b.png")
    (root / "escape").symlink_to(tmp_path / "secret")
    (root / "sub" / "link.png").symlink_to(tmp_path / "secret" / "b.png")
    assert resolve_under_root(root, "sub") == (root / "sub").resolve()
    assert [p.name for p in list_images_under(root, "sub")] == ["a.png"]  # the symlink out is skipped
    for bad in ("..", "../secret", "sub/../../secret", str(tmp_path / "secret"), "escape"):
        with pytest.raises(UploadError, match="outside the allowed folder"):
            resolve_under_root(root, bad)
    with pytest.raises(UploadError, match="does not exist"):
        resolve_under_root(root, "nope")


# --- the slider ----------------------------------------------------------------------------------------------
def test_slider_embeds_exact_pixels_offline() -> None:
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    right = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    page = slider_html(left, right, "A <b>", "B", zoom=3)
    assert "http" not in page
    assert "jpeg" not in page.lower()
    assert "jpg" not in page.lower()
    assert "image-rendering: pixelated" in page
    assert "A &lt;b&gt;" in page
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 2
    decoded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in uris]
    np.testing.assert_array_equal(decoded[0], right)
    np.testing.assert_array_equal(decoded[1], left)
    assert "width: 30px; height: 36px" in page


def test_slider_refuses_bad_input() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="same size"):
        slider_html(a, np.zeros((5, 4, 3), np.uint8), "a", "b")
    with pytest.raises(ValueError, match="zoom"):
        slider_html(a, a, "a", "b", zoom=0)
    with pytest.raises(TypeError, match="uint8"):
        png_data_uri(a.astype(np.float32))


def test_png_data_uri_is_exact_and_keyed_by_the_pixels() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)

    def decode(uri: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))

    first = png_data_uri(image)
    np.testing.assert_array_equal(decode(first), image)
    assert png_data_uri(image.copy()) == first  # the same pixels: the same encoding
    view = image[:, ::2]  # a non-contiguous view is encoded as the pixels it shows
    np.testing.assert_array_equal(decode(png_data_uri(view)), view)
    # the same bytes in another shape, or one changed pixel, are other images
    np.testing.assert_array_equal(decode(png_data_uri(image.reshape(10, 6, 3))), image.reshape(10, 6, 3))
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    np.testing.assert_array_equal(decode(png_data_uri(changed)), changed)


# --- figures are pure ----------------------------------------------------------------------------------------
def test_figure_builders_return_figures_and_do_not_mutate_inputs() -> None:
    rng = np.random.default_rng(1)
    images = {"HR": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "SR": np.zeros((32, 32, 3), np.uint8)}
    maps = {"a": rng.random((4, 4)).astype(np.float32), "b": rng.random((4, 4)).astype(np.float32)}
    table = pd.DataFrame(
        {"method": ["HR", "SR"], "var_gx": [1.0, 0.5], "var_gy": [1.2, 0.4], "psnr": [np.inf, 30]}
    )
    logs = pd.DataFrame(
        {"run": ["r"] * 3, "step": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "val_psnr": [np.nan, 20, 21]}
    )
    gains = pd.DataFrame({"pair": ["p"], "image": ["i"], "psnr_base": [30.0], "psnr_gain": [0.2]})
    inputs = [images, maps, table, logs, gains]
    before = copy.deepcopy(inputs)
    built = [
        image_grid(images),
        heatmap_grid(maps),
        heatmap_grid(maps, symmetric=False),
        variance_heatmap(maps["a"], "v", 8, 8, highlight=maps["a"] > 0.5),
        histogram_overlay(maps, highlight=(-1.0, 0.0)),
        mean_variance_bars(table),
        metric_bars(table, "psnr"),
        gain_scatter(gains),
        training_curves(logs, ["loss", "val_psnr"], "t", log_y=True),
        deficit_overlay(images["HR"], maps["a"], 8, 8),
        crop_figure(images, (4, 4, 8, 8), "HR"),
        sweep_figure(pd.DataFrame({"gv_weight": [0, 0.1], "psnr": [1, 2]}), "gv_weight", "psnr"),
    ]
    assert all(isinstance(fig, go.Figure) for fig in built)
    for original, now in zip(before, inputs):
        if isinstance(original, pd.DataFrame):
            pd.testing.assert_frame_equal(original, now)
        else:
            for key in original:
                np.testing.assert_array_equal(original[key], now[key])


def test_variance_heatmap_hover_names_patch_position() -> None:
    fig = variance_heatmap(np.ones((2, 3)), "v", patch_size=8, stride=4)
    heatmap = fig.data[0]
    assert list(heatmap.x) == [0, 4, 8]  # each cell at its patch's top-left pixel
    assert list(heatmap.y) == [0, 4]
    assert heatmap.hovertemplate.startswith(
        "patch at pixel y=%{y}, x=%{x}, 8x8<br>variance=%{customdata:.4g}"
    )
    overlay = deficit_overlay(np.zeros((6, 8), np.uint8), np.zeros((2, 3)), 4, 4, display_factor=2)
    image, cells = overlay.data
    assert (image.dx, image.dy) == (2, 2)  # the downsampled image drawn in the analysed image's pixels
    assert list(cells.x) == [2, 6, 10]  # patch centres, in those pixels
    assert cells.hovertemplate.startswith("patch centred at pixel y=%{y}, x=%{x}, 4x4")
    pooled = variance_heatmap(np.ones((2, 3)), "v", patch_size=8, stride=4, display_factor=2)
    assert list(pooled.data[0].x) == [0, 8, 16]
    assert "mean of 2x2 patches" in pooled.data[0].hovertemplate


# --- downloads, paper table, analysis ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["NPY", "CSV", "PNG"])
def test_encode_map_round_trips(fmt: str) -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    payload, name, _ = downloads.encode_map(values, "Variance Gx", fmt, log=True)
    assert name == f"variance_gx.{fmt.lower()}"
    if fmt == "NPY":
        np.testing.assert_array_equal(np.load(io.BytesIO(payload)), values)
    elif fmt == "CSV":
        assert pd.read_csv(io.BytesIO(payload))["value"].tolist() == values.ravel().tolist()
    else:  # a picture: coloured, enlarged so one entry is a block of pixels, with a colour bar below
        picture = np.asarray(Image.open(io.BytesIO(payload)))
        assert picture.ndim == 3
        assert picture.shape[1] >= downloads.MIN_PICTURE_SIDE
        block = picture.shape[1] // 3
        assert (picture[:block, :block] == picture[0, 0]).all()  # entry (0, 0) is one flat block
        assert not (
            picture[0, 0] == picture[0, -1]
        ).all()  # the smallest and largest entries differ in colour


def test_paper_table_matches_paper_md() -> None:
    path = catalog.find_paper_markdown()
    if path is None:
        pytest.skip("PAPER.md not found")
    table = catalog.paper_table(path.read_text())
    assert len(table) == 4 * 3 * 6
    row = table[(table["set"] == "Set5") & (table["scale"] == 2) & (table["arch"] == "VDSR")]
    assert row.set_index("loss")["psnr"].to_dict() == {"L2": 30.38, "L2+GV": 31.21}


def test_rows_frame_and_deficit() -> None:
    from gvcore.eval.scoring import score_outputs

    torch.manual_seed(0)
    hr = torch.randint(0, 256, (1, 3, 48, 48)).float() / 255  # on the 8-bit grid, like a decoded file
    blurred = analysis.degrade(hr, "gaussian blur", 2.0)
    table = analysis.rows_frame(score_outputs({"HR": hr, "blur": blurred}, hr, 2, "standard"))
    assert table.loc[0, "psnr"] == np.inf
    assert table.loc[0, "var_ratio"] == pytest.approx(1.0)
    assert table.loc[1, "var_ratio"] < 0.5
    assert table.loc[1, "gv_distance"] > 0
    no_ref = analysis.rows_frame(score_outputs({"blur": blurred}, None, 2, "standard"))
    assert np.isnan(no_ref.loc[0, "psnr"])
    assert no_ref.loc[0, "var_gx"] > 0
    settings = analysis.GradientSettings()
    deficit = analysis.variance_deficit(
        analysis.compute_maps(blurred, settings).variance, analysis.compute_maps(hr, settings).variance
    )
    assert deficit.shape == (1, 6, 6)
    assert (deficit < 0).all()


@pytest.mark.parametrize("kind", list(analysis.DEGRADATIONS))
def test_degradations_keep_size_and_range(kind: str) -> None:
    x = torch.rand(1, 3, 20, 24)
    y = analysis.degrade(x, kind, {"jpeg": 10}.get(kind, 2.0))
    assert y.shape == x.shape
    assert float(y.min()) >= 0
    assert float(y.max()) <= 1
    assert torch.equal(y, analysis.degrade(x, kind, {"jpeg": 10}.get(kind, 2.0)))


def test_tiled_super_resolution_matches_one_pass() -> None:
    import gvcore

    torch.manual_seed(0)
    model = gvcore.build_model("espcn", 2).eval()
    lr = torch.rand(1, 3, 40, 52)
    whole = analysis.super_resolve(model, lr, 2, "official", tile=64)
    tiled = analysis.super_resolve(model, lr, 2, "official", tile=16)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    assert torch.equal(analysis.super_resolve(model, lr, 2, "standard", tile=16), gvcore.quantize_8bit(tiled))


def test_deficit_region_finds_the_flattened_window() -> None:
    v_hr = np.ones((10, 12))
    v_out = np.ones((10, 12))
    v_out[3:7, 5:9] = 0.1  # a 4x4 window lost variance
    row, col, deficit = analysis.deficit_region(v_hr, v_out, 4)
    assert (row, col) == (3, 5)
    assert deficit == pytest.approx(16 * 0.9)
    assert analysis.deficit_region(v_hr, v_out, 50)[:2] == (0, 0)  # window clipped to the map
    with pytest.raises(ValueError, match="shape"):
        analysis.deficit_region(v_hr, v_out[:5], 4)


def test_amplified_difference() -> None:
    a = torch.zeros(1, 3, 4, 4)
    b = a.clone()
    b[..., 0, 0] = 2 / 255
    diff = analysis.amplified_difference(a, b, 10)
    assert diff.dtype == np.uint8
    assert diff[0, 0] == 108
    assert (diff.ravel()[1:] == 128).all()


def test_gv_gains_pairs_l1_and_gv_rows() -> None:
    table = pd.DataFrame(
        {
            "method": ["a", "b", "a", "b"],
            "arch": ["espcn"] * 4,
            "gv_weight": [0.0, 0.1, 0.0, 0.1],
            "scale": [2] * 4,
            "image": ["i", "i", "j", "j"],
            "psnr": [30.0, 30.5, 20.0, 19.0],
        }
    )
    gains = analysis.gv_gains(table)
    assert gains["psnr_gain"].tolist() == [0.5, -1.0]
    assert gains["pair"].iloc[0] == "espcn x2 λ=0.1"


@pytest.mark.parametrize(
    ("address", "local"), [("127.0.0.1", True), ("::1", True), ("", False), ("0.0.0.0", False)]
)
def test_the_app_serves_only_on_loopback(monkeypatch: pytest.MonkeyPatch, address: str, local: bool) -> None:
    import streamlit

    from dashboard import state

    monkeypatch.setattr(streamlit, "get_option", lambda name: address if name == "server.address" else None)
    assert state.listens_locally() is local


def test_launcher_binds_loopback_without_telemetry() -> None:
    from dashboard.__main__ import streamlit_argv

    argv = streamlit_argv()
    assert "--server.address=127.0.0.1" in argv
    assert "--browser.gatherUsageStats=false" in argv


def test_favicon_is_a_local_image() -> None:
    from dashboard import state

    icon = state.favicon()
    assert icon.size == (32, 32)
    assert icon.mode == "RGB"


def test_to_uint8_rounds_and_clamps_without_touching_its_input() -> None:
    import torch

    from dashboard.analysis import to_uint8

    x = torch.tensor([[[[-0.2, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.3]]]]).expand(1, 3, 1, 6).contiguous()
    before = x.clone()
    assert to_uint8(x)[0, :, 0].tolist() == [0, 0, 0, 2, 255, 255]  # round half to even, as torch.round
    assert torch.equal(x, before)
