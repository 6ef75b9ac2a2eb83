"""The memory probe that ``bench/bench_dashboard_server.py --probe`` loads into the server: its records and report."""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_probe_counts_reachable_tensors_and_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GVLAB_PROBE_LOG", raising=False)  # imported without it: no thread starts
    probe = _load("gvlab_probe_under_test", ROOT / "bench" / "server_probe" / "sitecustomize.py")
    # Only what this test allocates is asserted: other tests in the same process may leave tensors alive, so the
    # totals are compared with a sample taken just before, and our tensor must be listed unless every entry of
    # the (top-6) list is at least as large as it is.
    # The collector is off between the two samples, so nothing left by others is freed in between.
    gc.collect()
    gc.disable()
    try:
        before = probe.sample()
        held = {
            "t": torch.zeros(1, 3, 1024, 1024),
            "a": np.zeros((1024, 1024), dtype=np.float64),
        }  # 12 + 8 MiB
        record = probe.sample()
    finally:
        gc.enable()
    assert record["rss_mib"] > 0
    assert record["tensors_mib"] - before["tensors_mib"] >= 12
    assert record["arrays_mib"] - before["arrays_mib"] >= 8
    ours = "tensor(1, 3, 1024, 1024) 12 MiB"
    sizes = [float(entry.rsplit(" ", 2)[-2]) for entry in record["largest"]]
    assert ours in record["largest"] or (len(sizes) == 6 and min(sizes) >= 12), record["largest"]
    json.dumps(record)  # one JSON line per record
    del held


def test_report_picks_the_records_nearest_each_moment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("gvlab_bench_server_under_test", ROOT / "bench" / "bench_dashboard_server.py")
    log = tmp_path / "probe.jsonl"
    rows = [
        {"time": t, "rss_mib": rss, "tensors_mib": tensors}
        for t, rss, tensors in ((0, 1000, 10), (10, 3000, 900), (20, 1200, 200))
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench.report_probe(log, {"baseline": 1.0, "browsers closed": 19.0})
    out = capsys.readouterr().out
    assert "| baseline | 1000 | 10 |" in out
    assert "| RSS peak | 3000 | 900 |" in out
    assert "| browsers closed | 1200 | 200 |" in out
