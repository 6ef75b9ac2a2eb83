"""One measurement, one answer: every metric a page shows equals ``gvcore eval``'s on the same inputs.

AppTest renders the page on the fixture assets (:mod:`tests.dashboard_fixtures`); the page's table is read back
and compared, row by row, with :func:`gvcore.eval.evaluate.evaluate` on the same image, checkpoints, scale and
protocol, to the page's display rounding (4 decimals).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from gvcore.data.bundled import bundled_image_paths
from gvcore.eval.evaluate import evaluate
from tests.dashboard_fixtures import SCALE, make_fixture_assets, tables

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
COLUMNS = ("psnr", "ssim", "gv_distance", "var_gx", "var_gy", "var_ratio")
DISPLAY_TOL = 5.1e-5  # tables are shown rounded to 4 decimals


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_fixture_assets(tmp_path_factory.mktemp("parity-assets"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(root))
        yield root


def _folder(assets: Path, protocol: str) -> Path:
    return assets / "checkpoints" / ("official" if protocol == "official" else "")


def _library(assets: Path, image: str, protocol: str) -> pd.DataFrame:
    path = next(p for p in bundled_image_paths("test") if p.stem == image)
    ckpts = sorted(_folder(assets, protocol).glob("*.safetensors"))
    # noise=True: the pages show the noise control row too (gvcore.eval.scoring.noise_control), scored the same way
    table = evaluate(ckpts, path, SCALE, protocol, progress=False, noise=True)  # type: ignore[arg-type]
    return table.set_index("method")


def _compare(page_table: pd.DataFrame, library: pd.DataFrame) -> None:
    shown = page_table.set_index("method")
    required = {
        m for m in library.index if m != "HR" and not str(m).endswith("+noise")
    }  # HR, control optional
    assert required <= set(shown.index) <= set(library.index), (list(shown.index), list(library.index))
    for method in shown.index:
        for column in COLUMNS:
            if column not in shown:
                continue
            want, got = float(library.loc[method, column]), float(shown.loc[method, column])
            if pd.isna(want) or want == float("inf"):
                assert pd.isna(got) or got == want, (method, column, got, want)
            else:
                assert abs(got - want) <= DISPLAY_TOL, (method, column, got, want)


def _table_after(at: AppTest, key: str) -> pd.DataFrame:
    """The table shown just before the download button ``key`` (widgets.table renders the pair)."""
    buttons = [b for b in at.get("download_button") if getattr(b, "key", None) == key]
    assert buttons, f"no table {key!r} on the page"
    frames = [d.value for d in tables(at)]
    for frame in frames:
        if "method" in frame and "psnr" in frame:
            return frame
    raise AssertionError(f"no metric table on the page (keys: {[b.key for b in at.get('download_button')]})")


@pytest.mark.parametrize("protocol", ["standard", "official"])
def test_landing_page_table_equals_gvcore_eval(assets: Path, protocol: str) -> None:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    at.radio(key="obs_protocol").set_value(protocol).run()
    assert not at.exception, [e.message for e in at.exception]
    image = at.selectbox(key="obs_image").value
    _compare(_table_after(at, "obs-table"), _library(assets, image, protocol))


@pytest.mark.parametrize("protocol", ["standard", "official"])
def test_compare_page_table_equals_gvcore_eval(assets: Path, protocol: str) -> None:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    at.switch_page("../pages/compare.py").run()
    at.radio(key="cmp-protocol").set_value(protocol).run()
    assert not at.exception, [e.message for e in at.exception]
    image = at.selectbox(key="cmp-sample").value
    _compare(_table_after(at, "cmp-table"), _library(assets, image, protocol))
