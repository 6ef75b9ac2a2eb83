"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(capsys) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out
    assert "tensor(" in printed


def test_readme_result_tables_are_the_shipped_summary() -> None:
    """Every result row the README shows for the bundled reproduction is a line of the shipped summary.md."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The bundled reproduction", 1)[1].split("\n## ", 1)[0]
    summaries = "".join(
        (ROOT / "assets" / "results" / name).read_text()
        for name in ("summary.md", "summary_full.md")
        if (ROOT / "assets" / "results" / name).is_file()
    )
    rows = [line for line in section.splitlines() if re.match(r"\| (vdsr|edsr|espcn|x\d) ", line)]
    assert rows, "no result rows in the README's reproduction section"
    missing = [row for row in rows if row not in summaries]
    assert not missing, f"README rows not in assets/results/summary.md: {missing[:3]}"


def test_readme_results_region_is_generated_from_the_shipped_csvs() -> None:
    """No result sentence or table in README.md can disagree with the CSVs: the region is regenerated and compared."""
    from gvcore.reproduce_sentences import RESULTS_BEGIN, RESULTS_END, readme_results

    text = (ROOT / "README.md").read_text()
    shown = text[text.index(RESULTS_BEGIN) : text.index(RESULTS_END) + len(RESULTS_END)]
    expected = readme_results(ROOT / "assets" / "results")
    assert shown == expected, (
        "README.md's results region is stale: run `python -m gvcore.reproduce_sentences`"
    )


def test_summary_results_paragraph_is_generated_from_the_shipped_csvs() -> None:
    """summary.md's "Results in words" is the same template over the same CSVs."""
    from gvcore.reproduce_sentences import load_results, results_block

    summary = (ROOT / "assets" / "results" / "summary.md").read_text()
    assert results_block(*load_results(ROOT / "assets" / "results")) in summary


def _fake_own_data(root: Path) -> None:
    """The paths the README's "Your own models and data" commands name, as tiny fake data under ``root``."""
    import numpy as np
    from PIL import Image

    from tests.snapshot_fixtures import make_snapshot_runs

    make_snapshot_runs(root / "runs")
    rng = np.random.default_rng(0)

    def save(path: Path, h: int, w: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)

    for name in ("baby", "bird"):
        save(root / "data" / "Set5" / "GTmod12" / f"{name}.png", 48, 48)
        save(root / "data" / "Set5" / "LRbicx2" / f"{name}.png", 24, 24)
        save(root / "my_hr" / f"{name}.png", 40, 48)
        save(root / "my_lr" / f"{name}x2.png", 20, 24)
    save(root / "data" / "DIV2K" / "DIV2K_valid_HR" / "0801.png", 48, 40)
    save(root / "data" / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png", 24, 20)


def test_readme_own_data_commands_run(tmp_path: Path, monkeypatch) -> None:
    """Every command of "Your own models and data" runs as written (exit 0) and writes its CSV."""
    import shlex

    import pandas as pd

    from gvcore.cli import main

    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own models and data", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 5
    _fake_own_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "gvcore"
        assert main([*argv[1:], "--no-progress"]) == 0, command
        csv = argv[argv.index("--csv") + 1]
        assert len(pd.read_csv(tmp_path / csv)) > 0
    assert (tmp_path / "runs" / "results.sqlite").is_file()
    assert (tmp_path / "cached.csv").read_bytes() == _rerun_cached(commands[-1], tmp_path)
    assert set(pd.read_csv(tmp_path / "set5.csv")["lr_source"].dropna()) == {"file"}
    assert pd.read_csv(tmp_path / "snapshots.csv")["iteration"].notna().any()


def _rerun_cached(command: str, root: Path) -> bytes:
    import shlex

    from gvcore.cli import main

    argv = shlex.split(command)[1:]
    argv[argv.index("--csv") + 1] = "again.csv"
    assert main([*argv, "--no-progress"]) == 0
    return (root / "again.csv").read_bytes()
