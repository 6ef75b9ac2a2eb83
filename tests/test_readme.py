"""The README's library example runs as written; the docs pages' commands and results are the tested ones.

README.md keeps the short library example; the user guide (``docs/guide/``) holds the full one and the "Your own
models and data" commands, and ``docs/results.md`` the bundled reproduction's tables and generated results region.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


RESULTS_PAGE_PATH = ROOT / "docs" / "results.md"
OWN_DATA_PAGE = ROOT / "docs" / "guide" / "own-data.md"


@pytest.mark.parametrize("page", ["README.md", "docs/guide/library.md"])
def test_readme_python_example_runs(page: str, capsys) -> None:
    text = (ROOT / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{page} has no python example"
    for block in blocks:
        exec(compile(block, page, "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out
    assert "tensor(" in printed


def test_readme_is_short_and_its_example_ten_lines() -> None:
    """README.md stays an entry point (at most 250 lines, a library example of at most 10 lines)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    assert len(blocks[0].splitlines()) <= 10


def test_readme_states_results_without_numbers() -> None:
    """README's results summary has no number: every number is on docs/results.md, generated from the CSVs."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## What the bundled reproduction shows", 1)[1].split("\n## ", 1)[0]
    words = re.sub(r"\([^)]*\.md\)|`[^`]*`|\bL1\b", "", section)  # link targets, code, the loss's name
    assert not re.search(r"\d", words), "a number in README's results summary: put it in docs/results.md"


def test_readme_result_tables_are_the_shipped_summary() -> None:
    """Every result row the docs' Results page shows for the bundled reproduction is a line of summary.md."""
    section = RESULTS_PAGE_PATH.read_text()
    summaries = "".join(
        (ROOT / "assets" / "results" / name).read_text()
        for name in ("summary.md", "summary_full.md")
        if (ROOT / "assets" / "results" / name).is_file()
    )
    rows = [line for line in section.splitlines() if re.match(r"\| (vdsr|edsr|espcn|x\d) ", line)]
    assert rows, "no result rows on docs/results.md"
    missing = [row for row in rows if row not in summaries]
    assert not missing, f"docs/results.md rows not in assets/results/summary.md: {missing[:3]}"


def test_readme_results_region_is_generated_from_the_shipped_csvs() -> None:
    """No result sentence or table on docs/results.md can disagree with the CSVs: regenerated and compared."""
    from gvcore.reproduce.sentences import RESULTS_BEGIN, RESULTS_END, RESULTS_PAGE, readme_results

    assert ROOT / RESULTS_PAGE == RESULTS_PAGE_PATH
    text = RESULTS_PAGE_PATH.read_text()
    assert text.count(RESULTS_BEGIN) == 1
    assert text.count(RESULTS_END) == 1
    shown = text[text.index(RESULTS_BEGIN) : text.index(RESULTS_END) + len(RESULTS_END)]
    expected = readme_results(ROOT / "assets" / "results")
    assert shown == expected, (
        "docs/results.md's results region is stale: run `python -m gvcore.reproduce.sentences`"
    )
    assert RESULTS_BEGIN not in (ROOT / "README.md").read_text()


def test_summary_results_paragraph_is_generated_from_the_shipped_csvs() -> None:
    """summary.md's "Results in words" is the same template over the same CSVs."""
    from gvcore.reproduce.sentences import load_results, results_block

    summary = (ROOT / "assets" / "results" / "summary.md").read_text()
    assert results_block(*load_results(ROOT / "assets" / "results")) in summary


def _fake_own_data(root: Path) -> None:
    """The paths the "Your own models and data" commands (docs/guide/own-data.md) name, as tiny fake data under ``root``."""
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
    """Every command of "Your own models and data" (docs/guide/own-data.md) runs as written and writes its CSV."""
    import shlex

    import pandas as pd

    from gvcore.cli import main

    text = OWN_DATA_PAGE.read_text()
    section = text.split("# Your own models and data", 1)[1].split("\n## ", 1)[0]
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


def test_readme_findings_in_words_hold_on_the_shipped_csvs() -> None:
    """README's results bullets carry no numbers; each claim they make is checked here against the CSVs."""
    import pandas as pd

    from gvcore.data.bundled import image_group
    from gvcore.reproduce.summary import PAPER_DELTAS

    results = ROOT / "assets" / "results"
    text = (ROOT / "README.md").read_text()
    paired = pd.read_csv(results / "paired.csv")
    standard = pd.read_csv(results / "eval_standard.csv")
    natural = standard[standard["image"].map(image_group) == "natural"]
    # "L1-trained outputs keep clearly less of HR's gradient variance than HR has, and more than bicubic does"
    assert "keep clearly less of HR's gradient variance than HR has, and more than bicubic does" in text
    for scale, at in natural.groupby("scale"):
        bicubic = at[at["method"] == "bicubic"]["var_ratio"].mean()
        l1 = at[at["loss"] == "l1"].groupby(["arch", "seed"])["var_ratio"].mean()
        assert (l1 > bicubic).all(), scale
        assert (l1 < 0.9).all(), scale
    # "L1+GV recovers a small part of what L1 loses, with a confidence interval above zero in every cell"
    ratio = paired[paired["metric"] == "var_ratio"]
    assert (ratio["ci_low"] > 0).all()
    gain = (
        natural[natural["loss"].isin(["l1", "l1+gv"])].groupby(["arch", "scale", "loss"])["var_ratio"].mean()
    )
    for (arch, scale, loss), value in gain.items():
        if loss == "l1":
            recovered = (gain[(arch, scale, "l1+gv")] - value) / (1 - value)
            assert 0 < recovered < 0.5, (arch, scale, recovered)  # "a small part"
    # "Noise raises the variance ratio too"
    for _, at in natural.groupby("scale"):
        assert (
            at[at["method"] == "bicubic+noise"]["var_ratio"].mean()
            > at[at["method"] == "bicubic"]["var_ratio"].mean()
        )
    # "The PSNR changes from GV are small, mostly not distinguishable from zero, and far smaller than the paper's"
    psnr = paired[(paired["metric"] == "psnr") & (paired["images"] == "natural")]
    distinguishable = ((psnr["ci_low"] > 0) | (psnr["ci_high"] < 0)).sum()
    assert distinguishable < len(psnr) / 2
    ours = psnr[psnr["protocol"] == "standard"]
    theirs = [
        abs(PAPER_DELTAS[(str(m).replace("-lite", ""), int(s))][0])
        for m, s in zip(ours["model"], ours["scale"])
    ]
    assert ours["mean_delta"].abs().sum() <= 0.5 * sum(theirs)
    assert (psnr["mean_delta"].abs() < 0.25).all()  # "small": under a quarter of a dB in every cell
