"""The results database attacked: never a wrong number, never a file it does not own, never a crash.

One test (or one parametrised test) per case of the hardening issue, as an attacker or a careless user tries it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
import torch

import gvcore.checkpoint.store
from gvcore.checkpoint.store import save_checkpoint
from gvcore.cli import main
from gvcore.eval.evaluate import evaluate
from gvcore.eval.results_db import ResultsDB, ResultsDBError, read_results
from gvcore.eval.results_schema import APPLICATION_ID, SCHEMA
from gvcore.models import build_model
from tests.dashboard_fixtures import tables
from tests.image_fixtures import NoiseImages

#: the shared ``images`` fixture (tests/conftest.py) of this module
IMAGES = NoiseImages(seed=5, shapes=((32, 32),) * 2, folder="attack_images")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """Two ESPCN x2 checkpoints of the same size and label, different weights (so different PSNR)."""
    folder = tmp_path_factory.mktemp("attack_ckpts")
    blobs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = save_checkpoint(folder / f"m{seed}.safetensors", build_model("espcn", 2), label="m")
        blobs.append(path.read_bytes())
    assert len(blobs[0]) == len(blobs[1])
    assert blobs[0] != blobs[1]
    return blobs[0], blobs[1]


def _psnr(frame: pd.DataFrame) -> list[float]:
    return frame[frame["method"] == "m"]["psnr"].tolist()


def _truth(blob: bytes, images: Path, folder: Path) -> list[float]:
    """The numbers of ``blob`` computed without any cache, from its own file."""
    folder.mkdir(exist_ok=True)
    own = folder / "m.safetensors"
    own.write_bytes(blob)
    return _psnr(evaluate([own], images, 2, progress=False))


def _replace_keeping_stat(path: Path, blob: bytes) -> None:
    """Overwrite ``path`` with ``blob`` and give it back its size and mtime (as ``cp -p`` or ``rsync -a`` do)."""
    before = path.stat()
    path.write_bytes(blob)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


# ---------------------------------------------------------------------------- content, not metadata, is the key
def test_checkpoint_replaced_with_same_size_and_mtime_gets_its_own_numbers(
    images: Path, models: tuple[bytes, bytes], tmp_path: Path
) -> None:
    old, new = models
    ckpt, db = tmp_path / "m.safetensors", tmp_path / "results.sqlite"
    ckpt.write_bytes(old)
    first = _psnr(evaluate([ckpt], images, 2, progress=False, cache=db))
    _replace_keeping_stat(ckpt, new)
    second = _psnr(
        evaluate([ckpt], images, 2, progress=False, cache=db)
    )  # same process, same path/size/mtime
    assert first == _truth(old, images, tmp_path / "a")
    assert second == _truth(new, images, tmp_path / "b")
    assert first != second


def test_checkpoint_rewritten_between_loading_and_hashing_keeps_numbers_and_key_together(
    images: Path, models: tuple[bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training run rewrites the file right after the evaluation loaded it: the stored key is the loaded one."""
    old, new = models
    ckpt, db = tmp_path / "last.safetensors", tmp_path / "results.sqlite"
    ckpt.write_bytes(old)
    real = gvcore.checkpoint.store.load_model

    def load_then_rewrite(*args: object, **kwargs: object) -> object:
        loaded = real(*args, **kwargs)  # type: ignore[arg-type]
        _replace_keeping_stat(ckpt, new)
        return loaded

    with monkeypatch.context() as patch:
        patch.setattr("gvcore.eval.evaluate.load_model", load_then_rewrite)  # where evaluate looks it up
        raced = _psnr(evaluate([ckpt], images, 2, progress=False, cache=db))
    assert raced == _truth(old, images, tmp_path / "a")  # the model that was loaded and run
    later = _psnr(evaluate([ckpt], images, 2, progress=False, cache=db))  # the file now holds `new`
    assert later == _truth(new, images, tmp_path / "b")


# ------------------------------------------------------------------------------ only our own database, exactly
def _ours_with(path: Path, *statements: str, schema: bool = True) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        if schema:
            conn.execute(SCHEMA)
        for statement in statements:
            conn.execute(statement)
    conn.close()
    return path


REWRITE = (
    "CREATE TRIGGER inflate AFTER INSERT ON results BEGIN "
    "UPDATE results SET row = replace(row, '\"psnr\": 2', '\"psnr\": 4') WHERE key = NEW.key; END"
)
TAMPERED = {
    "trigger rewriting rows": ((REWRITE,), True),
    "no results table": (("CREATE TABLE notes (x TEXT)",), False),
    "wrong columns": (("CREATE TABLE results (key TEXT PRIMARY KEY, row TEXT)",), False),
    "results is a view": (
        ("CREATE TABLE t (key TEXT, row TEXT)", "CREATE VIEW results AS SELECT * FROM t"),
        False,
    ),
    "trigger that raises": (
        ("CREATE TRIGGER boom BEFORE INSERT ON results BEGIN SELECT RAISE(ABORT, 'boom'); END",),
        True,
    ),
    "extra index": (("CREATE INDEX by_image ON results (image)",), True),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_our_application_id_with_another_schema_is_refused_untouched(
    case: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statements, schema = TAMPERED[case]
    db = _ours_with(tmp_path / "results.sqlite", *statements, schema=schema)
    before = db.read_bytes()
    with pytest.raises(ResultsDBError, match="not exactly the results schema"):
        evaluate([], images, 2, progress=False, cache=db)
    args = ["eval", "--data", str(images), "--scale", "2", "--no-progress", "--cache", str(db)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "not exactly the results schema" in err[0]
    assert "Traceback" not in err[0]
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]
    with pytest.raises(ResultsDBError, match="not exactly the results schema"):
        read_results(db)


def test_a_trigger_added_after_opening_is_refused_before_writing(images: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    with ResultsDB(db) as opened:
        with sqlite3.connect(db) as other:
            other.execute(REWRITE)
        other.close()
        with pytest.raises(ResultsDBError, match="trigger 'inflate'"):
            opened.put_many([("k", {"scale": 2}, {"method": "m", "psnr": 28.22})])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    conn.close()


def test_cache_on_an_image_refuses_and_leaves_it_in_place(images: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    shutil.copy(images / "im0.png", photo)
    before = photo.read_bytes()
    args = ["eval", "--data", str(images), "--scale", "2", "--no-progress", "--cache", str(photo)]
    assert main(args) == 2
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


@pytest.mark.parametrize("target_bytes", [b"", b"my notes\n"])
def test_cache_on_a_symlink_never_writes_its_target(
    target_bytes: bytes, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target.txt"
    target.write_bytes(target_bytes)
    link = tmp_path / "results.sqlite"
    link.symlink_to(target)
    args = ["eval", "--data", str(images), "--scale", "2", "--no-progress", "--cache", str(link)]
    assert main(args) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_bytes() == target_bytes
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite", "target.txt"]


def test_a_symlinked_wal_file_is_refused(images: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    evaluate([], images, 2, progress=False, cache=db)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    Path(f"{db}-wal").symlink_to(victim)
    with pytest.raises(ResultsDBError, match="not a regular file"):
        ResultsDB(db)
    assert victim.read_bytes() == b"keep me"


# --------------------------------------------------------------------------------------- rows validated on read
def _store_rows(db: Path, rows: dict[str, str]) -> None:
    with ResultsDB(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO results VALUES (?, '', '', '', 'standard', 2, '{}', 'v', '', 'set', 'im', ?, ?)",
            [(key, row, float(i)) for i, (key, row) in enumerate(rows.items())],
        )
    conn.close()


BAD_ROWS = {
    "notjson": "{not json",
    "alist": "[1, 2]",
    "textpsnr": '{"method": "m", "psnr": "28"}',
    "nested": '{"method": {"a": 1}, "psnr": 28}',
    "neginf": '{"method": "m", "psnr": -Infinity}',
}


def test_bad_rows_are_skipped_with_a_warning_naming_them(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    _store_rows(db, {"good": '{"method": "m", "psnr": 28.5, "image": "im"}', **BAD_ROWS})
    table = read_results(db)
    assert table["method"].tolist() == ["m"]
    skipped = " | ".join(table.attrs["skipped"])
    for key in BAD_ROWS:
        assert f"row {key} skipped" in skipped
    with (
        ResultsDB(db) as opened,
        pytest.warns(RuntimeWarning, match=r"stored row notjson \(not valid JSON.*is unusable"),
    ):
        found = opened.get_many(["good", "notjson"], numbers=["psnr"], texts=["method"])
    assert list(found) == ["good"]


def test_a_bad_row_in_the_cache_is_recomputed_not_trusted(images: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    first = evaluate([], images, 2, progress=False, cache=db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET row = '{broken' WHERE row LIKE '%bicubic%'")
    conn.close()
    with pytest.warns(RuntimeWarning, match="is unusable"):
        again = evaluate([], images, 2, progress=False, cache=db)
    pd.testing.assert_frame_equal(first, again)
    assert read_results(db).attrs["skipped"] == []  # recomputed rows replaced the broken ones


def test_a_bad_row_does_not_take_down_the_benchmark_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "results.sqlite"
    good = (
        '{"method": "bicubic", "psnr": 28.5, "ssim": 0.8, "image": "im", "protocol": "standard", "scale": 2}'
    )
    _store_rows(db, {"good": good, "notjson": "{not json"})
    for name in ("GVLAB_ASSETS", "GVLAB_RUNS"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("GVLAB_RESULTS_DB", str(db))
    at = AppTest.from_file(
        str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=120
    )
    at.run()
    at.switch_page("../pages/benchmark.py").run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = " ".join(str(w.value) for w in at.warning)
    assert "1 stored row(s) skipped" in warnings
    assert "row notjson skipped (not valid JSON" in warnings
    assert str(tmp_path) not in warnings
    assert any("images" in df.value.columns and list(df.value["method"]) == ["bicubic"] for df in tables(at))


# ------------------------------------------------------------------------------------------------ bounded reads
def test_huge_rows_are_never_read_into_memory(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    huge = '{"method": "m", "pad": "' + "x" * (3 * 1024**2) + '"}'
    _store_rows(db, {f"huge{i}": huge for i in range(4)} | {"small": '{"method": "s", "psnr": 30.0}'})
    tracemalloc.start()
    try:
        table = read_results(db)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert table["method"].tolist() == ["s"]
    assert len(table.attrs["skipped"]) == 4
    assert "over the row size limit" in table.attrs["skipped"][0]
    assert peak < 1024**2  # one huge row alone is 3 MiB


def test_rows_are_read_a_page_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    _store_rows(db, {f"k{i:02d}": f'{{"method": "m{i:02d}", "psnr": {i}}}' for i in range(25)})
    pages = [read_results(db, limit=10, offset=start) for start in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert all(p.attrs["total"] == 25 for p in pages)
    methods = [m for p in pages for m in p["method"]]
    assert methods == [f"m{i:02d}" for i in reversed(range(25))]  # newest first, each row once
    budget = read_results(db, max_bytes=100)
    assert budget.attrs["truncated"]
    assert len(budget) < 25
    only = read_results(db, filters={"method": ["m03", "m07"]})
    assert sorted(only["method"]) == ["m03", "m07"]
    assert only.attrs["total"] == 2


# ------------------------------------------------------------------------------------------- report --out a folder
def test_report_out_a_folder_names_a_report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    args = ["report", "--ckpt", str(tmp_path / "m.safetensors"), "--scale", "2", "--out", str(folder)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'report.html'}" in err
    assert "eval.csv" not in err


# ------------------------------------------------------------------------------- foreign-weight folder listing
def test_junk_weights_cannot_hide_a_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    from dashboard import catalog

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "weights"
    folder.mkdir()
    for i in range(3000):
        (folder / f"a{i:04d}.pth").write_bytes(b"junk" * 8)
    torch.manual_seed(0)
    state = build_model("espcn", 2).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "zz_good.safetensors")
    notes: list[str] = []
    infos = catalog.folder_checkpoint_infos([folder], notes)
    assert [(i["file"], i.get("arch"), i.get("scale")) for i in infos] == [
        ("zz_good.safetensors", "espcn", 2)
    ]
    assert notes == ["weights: 3000 file(s) skipped: 3000 not a checkpoint by its header"]


def test_listing_ranks_by_header_and_keeps_a_time_budget(tmp_path: Path) -> None:
    from dashboard import catalog

    folder = tmp_path / "weights"
    folder.mkdir()
    torch.manual_seed(0)
    save_checkpoint(folder / "z_ours.safetensors", build_model("espcn", 2))
    torch.save(build_model("espcn", 2).state_dict(), folder / "y_zip.pth")
    (folder / "x_pickle.pth").write_bytes(b"\x80\x04" + b"\x00" * 30)
    (folder / "w_junk.safetensors").write_bytes(b"\xff" * 64)
    paths = sorted(folder.iterdir())
    chosen, notes = catalog.rank_checkpoint_files(paths, limit=2)
    assert [p.name for p in chosen] == ["y_zip.pth", "z_ours.safetensors"]  # the two best headers, by name
    assert notes == [
        "2 file(s) skipped: 1 not a checkpoint by its header, 1 beyond the 2 listed (best headers first)"
    ]
    ticks = iter(range(100))
    chosen, notes = catalog.rank_checkpoint_files(
        paths, limit=4, budget_s=1.5, clock=lambda: float(next(ticks))
    )
    assert [p.name for p in chosen] == [
        "x_pickle.pth",
        "y_zip.pth",
        "z_ours.safetensors",
    ]  # checked: w_junk only
    assert notes == [
        "1 file(s) skipped: 1 not a checkpoint by its header",
        "3 file(s) not header-checked within 1.5 s (ranked last, by name)",
    ]
