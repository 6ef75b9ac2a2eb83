"""Benchmark, Structure atlas, Training runs and Training snapshots: each page file is a ``render()`` over view blocks.

A page file holds imports, constants, functions (and classes), a ``def render() -> None`` and, last, the call
``render()`` that Streamlit runs when it executes the file; no other top-level statement. Read from the source
(``ast``), so nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("benchmark", "atlas", "training_runs", "snapshots")


def is_constant(node: ast.stmt) -> bool:
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else [node.target]
        if isinstance(node, ast.AnnAssign)
        else []
    )
    return bool(targets) and all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)


@pytest.mark.parametrize("page", PAGES)
def test_page_is_a_render_over_functions(page: str) -> None:
    tree = ast.parse((ROOT / "pages" / f"{page}.py").read_text())
    body = tree.body
    assert ast.get_docstring(tree)
    *statements, last = body[1:]
    assert ast.unparse(last) == "render()"
    render = [n for n in statements if isinstance(n, ast.FunctionDef) and n.name == "render"]
    assert len(render) == 1
    assert not render[0].args.args
    returns = render[0].returns
    assert returns is not None
    assert ast.unparse(returns) == "None"
    stray = [
        ast.unparse(n).splitlines()[0]
        for n in statements
        if not isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
        and not is_constant(n)
    ]
    assert not stray, stray
