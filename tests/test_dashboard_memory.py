"""Dashboard memory has a ceiling: byte-bounded caches with expiry.

Caches are bounded in bytes with expiry, refusals are remembered by content, display data is bounded, and no
traceback or server path is shown to a user.
"""

from __future__ import annotations

import gc
import io
import tempfile
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dashboard import state
from dashboard.bounded_cache import ByteBudgetCache, budget_cached, nbytes
from dashboard.safety import UploadError, load_checkpoint_upload
from tests.dashboard_fixtures import charts, image_sized_arrays, rect_png

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"


# --- the cache -------------------------------------------------------------------------------------------------
def test_nbytes_counts_buffers_once() -> None:
    tensor = torch.zeros(10, 10)
    array = np.zeros(25, dtype=np.float64)
    frame = pd.DataFrame({"a": np.zeros(100, dtype=np.float32)})
    value = {"t": tensor, "view": tensor[:2], "a": array, "again": array, "f": frame, "b": b"12345"}
    expected = 400 + 200 + int(frame.memory_usage(index=True).sum()) + 5
    assert nbytes(value) >= expected
    assert nbytes(value) < expected + 2000  # keys and the bytes object's header only


def test_nbytes_counts_a_series() -> None:
    series = pd.Series(np.zeros(1000, dtype=np.float64))
    assert 8000 <= nbytes(series) < 8000 + 1000


def test_module_is_measured_by_its_parameters() -> None:
    model = torch.nn.Conv2d(3, 8, 3)
    assert nbytes(model) == (8 * 3 * 9 + 8) * 4


def test_cache_evicts_least_recently_used_to_stay_within_budget() -> None:
    cache = ByteBudgetCache("t", max_bytes=1000, ttl_s=60)
    cache.get_or_compute("a", lambda: np.zeros(100, dtype=np.float32))  # 400 B
    cache.get_or_compute("b", lambda: np.zeros(100, dtype=np.float32))  # 400 B
    cache.get_or_compute("a", lambda: pytest.fail("'a' is cached"))  # 'a' is now the most recent
    cache.get_or_compute("c", lambda: np.zeros(100, dtype=np.float32))  # evicts 'b'
    assert cache.keys() == ["a", "c"]
    assert cache.total_bytes == 800


def test_value_larger_than_the_budget_is_returned_but_not_kept() -> None:
    cache = ByteBudgetCache("t", max_bytes=100, ttl_s=60)
    value = cache.get_or_compute("big", lambda: np.zeros(1000, dtype=np.uint8))
    assert value.size == 1000
    assert cache.keys() == []


def test_entries_expire() -> None:
    now = [0.0]
    cache = ByteBudgetCache("t", max_bytes=10_000, ttl_s=10, clock=lambda: now[0])
    calls = []
    cache.get_or_compute("k", lambda: calls.append(1) or np.zeros(4))
    now[0] = 5.0
    cache.get_or_compute("k", lambda: calls.append(1) or np.zeros(4))
    now[0] = 16.0
    cache.get_or_compute("k", lambda: calls.append(1) or np.zeros(4))
    assert len(calls) == 2


def test_evicted_values_are_freed() -> None:
    cache = ByteBudgetCache("t", max_bytes=5000, ttl_s=60)
    first = cache.get_or_compute("a", lambda: torch.zeros(1000))  # 4000 B
    alive = weakref.ref(first)
    del first
    cache.get_or_compute("b", lambda: torch.zeros(1000))  # evicts 'a'
    gc.collect()
    assert alive() is None


def test_failures_are_not_cached() -> None:
    cache = ByteBudgetCache("t", max_bytes=5000, ttl_s=60)
    calls = []

    @budget_cached(cache)
    def load(name: str, _data: bytes) -> bytes:
        calls.append(name)
        if not _data:
            raise ValueError("empty")
        return _data

    with pytest.raises(ValueError, match="empty"):
        load("x", b"")
    assert load("x", b"abc") == b"abc"
    assert load("x", b"ignored: underscore arguments are not part of the key") == b"abc"
    assert calls == ["x", "x"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_bytes": 0, "ttl_s": 1}, "max_bytes"), ({"max_bytes": 1, "ttl_s": 0}, "ttl_s")],
)
def test_cache_refuses_bad_settings(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ByteBudgetCache("t", **kwargs)  # type: ignore[arg-type]


def test_refusal_memory_is_bounded() -> None:
    session: dict[str, object] = {}
    memory = state.remember_refusals(session, "k")
    for index in range(state.MAX_REMEMBERED_REFUSALS + 10):
        memory[f"d{index}"] = "refused"
    assert len(memory) == state.MAX_REMEMBERED_REFUSALS
    assert "d0" not in memory
    assert state.remember_refusals(session, "k") is memory


# --- messages: no server path, no traceback --------------------------------------------------------------------
def test_checkpoint_upload_errors_never_show_the_temporary_path() -> None:
    with pytest.raises(UploadError) as caught:
        load_checkpoint_upload("mine.pth", b"PK\x03\x04 not really a zip", scale=2)
    message = str(caught.value)
    assert "mine.pth" in message
    assert tempfile.gettempdir() not in message
    assert "gvlab-upload-" not in message


def test_checkpoint_upload_uses_the_upload_cap_as_max_bytes(tmp_path: Path) -> None:
    from gvcore import build_model
    from gvcore.checkpoint.store import save_checkpoint

    path = save_checkpoint(tmp_path / "m.safetensors", build_model("espcn", 2))
    with pytest.raises(UploadError, match="over the limit of 100"):
        load_checkpoint_upload("m.safetensors", path.read_bytes(), scale=2, max_bytes=100)


def test_folder_refusals_do_not_reveal_where_the_root_lives(tmp_path: Path) -> None:
    from dashboard.safety import resolve_under_root

    root = tmp_path / "images"
    root.mkdir()
    for bad, match in (
        ("..", "outside the allowed folder 'images'"),
        ("nope", "does not exist under 'images'"),
    ):
        with pytest.raises(UploadError, match=match) as caught:
            resolve_under_root(root, bad)
        assert str(tmp_path) not in str(caught.value)


def test_uncaught_errors_show_no_traceback() -> None:
    from dashboard.__main__ import streamlit_argv

    assert "--client.showErrorDetails=type" in streamlit_argv()
    assert 'showErrorDetails = "type"' in (ROOT / ".streamlit" / "config.toml").read_text()


# --- the explorer under AppTest ----------------------------------------------------------------------------------
def _png(seed: int, side: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def explorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GVLAB_ASSETS", str(tmp_path))
    monkeypatch.setenv("GVLAB_RUNS", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("../pages/variance_explorer.py").run()
    at.radio(key="vx-source").set_value("Upload").run()
    return at


def test_explorer_session_keeps_noimage_sized_arrays(explorer: AppTest) -> None:
    """Once the caches let go, a session whose page has finished holds nothing the size of its image.

    Disconnected sessions linger in the server (Streamlit keeps up to 128 for reconnection), so whatever a
    finished run leaves in its session is memory no cache bounds: 770 MB per 16 MP upload before this was
    fixed (the patch-settings fragment kept the image and its gradient maps as arguments, and the page's
    globals through its function).
    """
    from dashboard import loaders

    for seed in range(3):
        explorer.file_uploader(key="vx-upload").upload(f"u{seed}.png", rect_png(seed, 184, 248), "image/png")
        explorer.run()
        assert not explorer.exception, [e.message for e in explorer.exception]
    explorer.radio(key="vx-second").set_value("a degraded copy").run()  # the fragment alone reruns
    explorer.select_slider(key="vx-patch").set_value(16).run()
    assert not explorer.exception, [e.message for e in explorer.exception]
    assert "15 x 11 patches of 16x16 pixels" in " | ".join(str(c.value) for c in explorer.caption)
    loaders.DATA_CACHE.clear()
    loaders.MODEL_CACHE.clear()
    assert image_sized_arrays(184, 248) == []


def test_explorer_fragment_recomputes_what_the_cache_dropped(explorer: AppTest) -> None:
    """A patch-setting change after the caches were emptied decodes the upload again instead of failing."""
    from dashboard import loaders

    explorer.file_uploader(key="vx-upload").upload("u.png", rect_png(7, 184, 248), "image/png")
    explorer.run()
    loaders.DATA_CACHE.clear()
    explorer.select_slider(key="vx-patch").set_value(4).run()
    assert not explorer.exception, [e.message for e in explorer.exception]
    assert "62 x 46 patches of 4x4 pixels" in " | ".join(str(c.value) for c in explorer.caption)


def test_explorer_remembers_a_refused_upload(explorer: AppTest) -> None:
    explorer.file_uploader(key="vx-upload").upload("bad.png", b"not a png at all", "image/png")
    explorer.run()
    assert explorer.error
    refused = explorer.session_state["vx-refused-uploads"]
    assert len(refused) == 1
    explorer.run()  # a rerun shows the remembered refusal
    assert "bad.png" in str(explorer.error[0].value)


def test_deficit_map_sent_to_the_browser_is_pooled(explorer: AppTest) -> None:
    explorer.file_uploader(key="vx-upload").upload("u.png", _png(0, 600), "image/png")
    explorer.run()
    explorer.toggle(key="vx-overlap").set_value(True).run()
    explorer.select_slider(key="vx-stride").set_value(1).run()
    explorer.radio(key="vx-second").set_value("a degraded copy").run()
    assert not explorer.exception, [e.message for e in explorer.exception]
    captions = " | ".join(str(c.value) for c in explorer.caption)
    assert "deficit map is shown averaged over" in captions
    deficit = next(c for c in charts(explorer) if "deficit" in c.spec.lower())
    assert len(deficit.spec) < 8 * 1024 * 1024  # 593x593 patches would be ~30 MB of JSON


def test_labels_show_the_name_of_each_option_and_any_other_as_text() -> None:
    from dashboard.widgets import labels

    shown = labels({2: "x2 (bundled)"})
    assert shown(2) == "x2 (bundled)"
    assert shown(3) == "3"
