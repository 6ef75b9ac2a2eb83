"""No server path reaches the user: the sidebar's assets line and the Benchmark page's error messages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from dashboard.safety import assets_label, without_paths
from tests.dashboard_fixtures import make_fixture_assets

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TIMEOUT = 120


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_fixture_assets(tmp_path_factory.mktemp("server-side-assets"))
    data = tmp_path_factory.mktemp("server-side-data")
    (data / "set").mkdir()
    (data / "set" / "broken.png").write_bytes(b"this is not a PNG")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(root))
        patch.setenv("GVLAB_RUNS", str(root / "runs"))
        patch.setenv("GVLAB_DATA_ROOTS", str(data))
        yield root


def shown_text(at: AppTest) -> str:
    """Every caption, error, warning and info of the page and its sidebar, and its HTML (tables, bars), joined."""
    parts = [*at.caption, *at.sidebar.caption, *at.error, *at.warning, *at.info]
    return " | ".join([*(str(e.value) for e in parts), *(str(h.proto.body) for h in at.get("html"))])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not an image: /srv/data/set/bad.png", "not an image: bad.png"),
        ("cannot open '/home/me/x/results.sqlite': locked", "cannot open 'results.sqlite': locked"),
        ("in (/a/b/c, /d/e)", "in (c, e)"),
        ("relative/path.png and plain words stay", "relative/path.png and plain words stay"),
    ],
)
def test_without_paths_keeps_only_the_last_component(text: str, expected: str) -> None:
    assert without_paths(text) == expected


def test_assets_label_names_no_server_folder(tmp_path: Path) -> None:
    bundled = tmp_path / "repo" / "assets"
    bundled.mkdir(parents=True)
    assert assets_label(bundled, bundled) == "bundled assets"
    label = assets_label(tmp_path / "elsewhere" / "my-assets", bundled)
    assert label == "`my-assets` (GVLAB_ASSETS)"
    assert str(tmp_path) not in label


def test_sidebar_shows_the_assets_folder_name_not_its_path(assets: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    sidebar = " | ".join(str(c.value) for c in at.sidebar.caption)
    assert f"`{assets.name}` (GVLAB_ASSETS)" in sidebar
    assert str(assets.parent) not in shown_text(at)


def test_benchmark_warning_names_the_file_not_its_server_folder(assets: Path) -> None:
    """A file that fails to evaluate is skipped with a warning that says which file and why, without its path."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    at.radio(key="bm_source").set_value("server folder").run()
    at.text_input(key="bm_sub").set_value("set").run()
    at.button(key="live-run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = " | ".join(str(w.value) for w in at.warning)
    assert "Skipped broken.png: not an image" in warnings
    assert os.environ["GVLAB_DATA_ROOTS"] not in warnings
    assert "/set/broken.png" not in warnings


def test_benchmark_database_error_has_no_server_path(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable results database is reported by name: the error text is stripped of server paths."""
    import gvcore.eval.results_db

    database = tmp_path / "hidden" / "results.sqlite"
    database.parent.mkdir()
    database.write_bytes(b"placeholder")
    monkeypatch.setenv("GVLAB_RESULTS_DB", str(database))

    def refuse(path: str, **bounds: object) -> object:
        raise gvcore.eval.results_db.ResultsDBError(f"cannot open results database {path}: disk I/O error")

    monkeypatch.setattr(gvcore.eval.results_db, "read_results", refuse)
    monkeypatch.setattr(gvcore.eval.results_db, "results_overview", refuse)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    assert not at.exception, [e.message for e in at.exception]
    errors = " | ".join(str(e.value) for e in at.error)
    assert "Cannot read the results database: cannot open results database results.sqlite" in errors
    assert str(database.parent) not in errors


def test_benchmark_page_shows_no_server_folder_anywhere(assets: Path) -> None:
    """Captions, infos and the data-root choice name files and folders, never where they live on the server."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    at.radio(key="bm_source").set_value("server folder").run()
    assert not at.exception, [e.message for e in at.exception]
    root_choice = at.selectbox(key="bm_root")
    shown = shown_text(at) + " | " + " | ".join(root_choice.options)
    data_root = os.environ["GVLAB_DATA_ROOTS"]
    assert root_choice.options == [Path(data_root).name]
    assert str(assets) not in shown
    assert data_root not in shown
