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
