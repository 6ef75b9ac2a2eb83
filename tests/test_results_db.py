"""The results database: identical cached reruns without running a model, content keys, concurrency, bad files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import torch

import gvcore.eval.scoring
from gvcore.checkpoint.store import save_checkpoint
from gvcore.cli import main
from gvcore.eval.evaluate import evaluate, write_csv
from gvcore.eval.results_db import ResultsDB, ResultsDBError
from gvcore.models import build_model
from tests.image_fixtures import NoiseImages

#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=9, shapes=((48, 48),) * 3, folder="db_images")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("db_ckpts")
    paths = []
    for seed, name in enumerate(("a", "b")):
        torch.manual_seed(seed)
        paths.append(save_checkpoint(folder / f"{name}.safetensors", build_model("espcn", 2), label=name))
    return paths


def _no_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("a model was run although every result is cached")

    monkeypatch.setattr(gvcore.eval.scoring, "run_model", fail)


def test_rerun_is_identical_and_runs_no_model(
    images: Path, checkpoints: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "results.sqlite"
    first = evaluate(checkpoints, images, 2, progress=False, cache=db)
    write_csv(first, tmp_path / "first.csv")
    with monkeypatch.context() as patch:
        _no_model_runs(patch)
        second = evaluate(checkpoints, images, 2, progress=False, cache=db)
    write_csv(second, tmp_path / "second.csv")
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "second.csv").read_bytes()
    uncached = evaluate(checkpoints, images, 2, progress=False)
    pd.testing.assert_frame_equal(first, uncached)


def test_keys_are_content_not_names(
    images: Path, checkpoints: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "results.sqlite"
    evaluate(checkpoints[:1], images, 2, progress=False, cache=db)
    renamed = tmp_path / "renamed.safetensors"
    renamed.write_bytes(checkpoints[0].read_bytes())
    with monkeypatch.context() as patch:
        _no_model_runs(patch)
        evaluate([renamed], images, 2, progress=False, cache=db)
        with pytest.raises(AssertionError, match="a model was run"):  # another tile setting: another key
            evaluate([renamed], images, 2, progress=False, cache=db, tile=16)


def test_a_new_checkpoint_only_runs_that_model(
    images: Path, checkpoints: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "results.sqlite"
    evaluate(checkpoints[:1], images, 2, progress=False, cache=db)
    ran: list[int] = []
    real = gvcore.eval.scoring.run_model

    def counting(model: torch.nn.Module, *args: object, **kwargs: object) -> torch.Tensor:
        ran.append(1)
        return real(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gvcore.eval.scoring, "run_model", counting)
    both = evaluate(checkpoints, images, 2, progress=False, cache=db)
    assert len(ran) == 3  # model b on 3 images; a read back
    pd.testing.assert_frame_equal(both, evaluate(checkpoints, images, 2, progress=False))


def _worker(args: tuple[list[str], str, str]) -> int:
    ckpts, data, db = args
    frame = evaluate(ckpts, data, 2, progress=False, cache=db)
    return len(frame)


def test_two_processes_share_one_database(images: Path, checkpoints: list[Path], tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    job = ([str(p) for p in checkpoints], str(images), str(db))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sizes = pool.map(_worker, [job, job])
    assert sizes == [12, 12]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 12
    with ResultsDB(db) as opened:
        assert len(opened.table()) == 12


def test_foreign_sqlite_is_refused_untouched(images: Path, tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    before = db.read_bytes()
    with pytest.raises(ResultsDBError, match="not a gvcore results database"):
        evaluate([], images, 2, progress=False, cache=db)
    assert db.read_bytes() == before


def test_a_damaged_database_of_ours_is_set_aside(images: Path, tmp_path: Path) -> None:
    """Only a file whose header says it is ours is renamed when SQLite finds it damaged."""
    db = tmp_path / "results.sqlite"
    evaluate([], images, 2, progress=False, cache=db)
    raw = bytearray(db.read_bytes())
    raw[100:] = b"\xff" * (len(raw) - 100)  # keep SQLite's header (and our application id), wreck the pages
    db.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="set it aside"):
        frame = evaluate([], images, 2, progress=False, cache=db)
    assert len(frame) == 6
    assert [p.read_bytes() for p in tmp_path.glob("results.sqlite.corrupt-*")] == [bytes(raw)]
    with ResultsDB(db) as opened:
        assert len(opened.table()) == 6


def test_a_file_that_is_not_a_database_is_refused_untouched(images: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"garbage, not an SQLite file" * 100)
    with pytest.raises(ResultsDBError, match="is not an SQLite database"):
        evaluate([], images, 2, progress=False, cache=db)
    assert db.read_bytes() == b"garbage, not an SQLite file" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]


def test_cli_cache_and_foreign_error(
    images: Path, checkpoints: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    args = ["eval", "--ckpt", str(checkpoints[0]), "--data", str(images), "--no-progress", "--cache", str(db)]
    assert main([*args, "--csv", str(tmp_path / "1.csv")]) == 0
    assert main([*args, "--csv", str(tmp_path / "2.csv")]) == 0
    assert (tmp_path / "1.csv").read_bytes() == (tmp_path / "2.csv").read_bytes()
    capsys.readouterr()
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert main([*args[:-1], str(foreign)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]]
    assert "not a gvcore results database" in err[0]


def test_read_results_is_read_only_and_refuses_bad_files(
    images: Path, checkpoints: list[Path], tmp_path: Path
) -> None:
    from gvcore.eval.results_db import read_results

    db = tmp_path / "results.sqlite"
    evaluate(checkpoints[:1], images, 2, progress=False, cache=db)
    table = read_results(db)
    assert sorted(set(table["method"])) == ["HR", "a", "bicubic"]
    assert set(table["data"]) == {str(images)}
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"junk" * 1000)
    with pytest.raises(ResultsDBError, match="not an SQLite database"):
        read_results(junk)
    assert junk.read_bytes() == b"junk" * 1000
    with pytest.raises(ResultsDBError, match="no results database"):
        read_results(tmp_path / "missing.sqlite")


def test_default_path_is_shared_through_the_environment(monkeypatch, tmp_path):
    from gvcore.eval.results_db import DEFAULT_PATH, default_path

    monkeypatch.delenv("GVLAB_RESULTS_DB", raising=False)
    assert default_path() == DEFAULT_PATH
    assert default_path(tmp_path) == tmp_path / "runs" / "results.sqlite"
    monkeypatch.setenv("GVLAB_RESULTS_DB", str(tmp_path / "lab.sqlite"))
    assert default_path(tmp_path / "elsewhere") == tmp_path / "lab.sqlite"
