"""Repository-level contracts: the README's Quick start, CI wiring, pins, and layering."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^#+ .*quick ?start.*$", text, re.I | re.M)
    assert match, "README has no Quick start section"
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text[match.end() :], re.S)
    lines = [ln.strip() for ln in blocks[0].splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines


def test_quick_start_has_exactly_two_one_line_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    dashboard, tests = commands
    assert "gvcore dashboard" in dashboard
    assert "127.0.0.1" in dashboard
    assert "pip install" in dashboard
    assert "pip install" in tests
    assert "pytest" in tests
    assert "ruff" in tests
    assert "mypy" in tests


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    # .ci/run extracts the second Quick start line from the README and runs it
    assert "quick ?start" in ci
    assert "lines[1]" in ci


def test_torch_is_pinned_exactly() -> None:
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.14.1" in reqs
    assert "torchvision==0.29.1" in reqs
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.4,<=2.14.1"' in pyproject


def test_gvcore_never_imports_streamlit_or_plotly() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "gvcore").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+(streamlit|plotly)\b", p.read_text(), re.M)
    ]
    assert offenders == []


def test_gvcore_never_imports_the_ui_layer() -> None:
    """No module under gvcore/ imports dashboard, streamlit or plotly, not even inside a function."""
    ui = ("dashboard", "streamlit", "plotly", "pages")
    offenders = []
    for path in sorted((ROOT / "gvcore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] in ui
            ]
    assert offenders == []


def test_pytest_timeout_is_active(pytestconfig: pytest.Config) -> None:
    """pytest-timeout (requirements-dev.txt) is loaded and pyproject's ``timeout = 300`` reaches it."""
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert float(pytestconfig.getini("timeout")) == 300


def test_import_gvcore_is_cheap_and_lazy() -> None:
    code = (
        "import sys, gvcore; "
        "heavy = [m for m in ('streamlit', 'plotly', 'triton', 'spandrel', 'pandas') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_public_name_raises_attribute_error() -> None:
    import gvcore

    with pytest.raises(AttributeError, match="no_such_function"):
        gvcore.no_such_function


def test_every_lazy_export_resolves() -> None:
    import gvcore

    for name in gvcore._EXPORTS:
        assert getattr(gvcore, name) is not None, name


# The layers of docs/ARCHITECTURE.md ("Layers"): core ops -> data/models/eval/train/reproduce -> dashboard -> pages.
CORE_OPS = {
    "color",
    "gradients",
    "variance",
    "loss",
    "metrics",
    "perceptual",
    "resize",
    "io",
    "_validation",
    "atomic",
    "protocol",
}


def _imports(path: Path, indented: bool) -> set[str]:
    indent = r"\s+" if indented else ""
    pattern = rf"^{indent}(?:from|import)\s+(gvcore(?:\.\w+)?|dashboard|pages)\b"
    return set(re.findall(pattern, path.read_text(), re.M))


def test_core_ops_import_no_higher_gvcore_layer() -> None:
    files = [ROOT / "gvcore" / f"{name}.py" for name in CORE_OPS] + list(
        (ROOT / "gvcore" / "kernels").glob("*.py")
    )
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m
            for m in _imports(p, False) | _imports(p, True)
            if m.split(".")[-1] not in CORE_OPS | {"kernels"}
        )
        for p in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_gvcore_never_imports_the_dashboard() -> None:
    """No gvcore module imports dashboard/pages, at module level or inside a function (the UI registers itself)."""

    def importers(indented: bool) -> list[str]:
        return sorted(
            str(p.relative_to(ROOT))
            for p in (ROOT / "gvcore").rglob("*.py")
            if {"dashboard", "pages"} & {m.split(".")[0] for m in _imports(p, indented)}
        )

    assert importers(indented=False) == []
    assert importers(indented=True) == []


def _nav_pages(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    if isinstance(node, list):
        return [page for value in node for page in _nav_pages(value)]
    return []


def test_docs_site_nav_holds_every_page_and_ci_builds_it_strictly() -> None:
    import yaml

    import gvcore

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False  # no request to a font service at build or view time
    nav = _nav_pages(config["nav"])
    assert [p for p in nav if not (ROOT / "docs" / p).is_file()] == []
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav) == pages
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict" in ci
    assert "site/" in (ROOT / ".gitignore").read_text().splitlines()
    api = (ROOT / "docs" / "api" / "index.md").read_text()
    assert [name for name in gvcore._EXPORTS if f"`gvcore.{name}`" not in api] == []


# --- the layout (issue #19): subpackages by concern, no cycles, few and explained lazy imports -------------------
MAX_TOP_LEVEL_MODULES = 20
MAX_FUNCTION_LEVEL_IMPORTS = 25
LAZY_REASONS = ("# lazy:", "# cycle:")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _gvcore_imports(path: Path) -> tuple[set[str], list[int]]:
    """The gvcore modules ``path`` imports when it is imported, and the lines of its function-level gvcore imports."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    eager: set[str] = set()
    lazy: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gvcore":
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "gvcore"]
        else:
            continue
        if not names:
            continue
        scopes, q = [], node
        while q in parents:
            q = parents[q]
            scopes.append(q)
        if any(isinstance(q, ast.If) and "TYPE_CHECKING" in ast.unparse(q.test) for q in scopes):
            continue
        if any(isinstance(q, (ast.FunctionDef, ast.AsyncFunctionDef)) for q in scopes):
            lazy.append(node.lineno)
            continue
        for name in names:  # importing a.b.c imports a, a.b and a.b.c
            parts = name.split(".")
            eager.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return eager, lazy


def _gvcore_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / "gvcore").rglob("*.py"))}


def test_gvcore_top_level_holds_at_most_20_modules() -> None:
    top = sorted(p.name for p in (ROOT / "gvcore").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    # no flat prefix families left: they are packages now
    families = {name.split("_")[0] for name in top if "_" in name.strip("_")}
    assert not families & {"checkpoint", "training", "reproduce", "results", "zoo", "ncnn"}, top


def test_gvcore_has_no_import_cycles() -> None:
    modules = _gvcore_modules()
    # a submodule's own parent packages are already being imported when it runs: not an edge
    graph = {
        name: {m for m in _gvcore_imports(path)[0] if m in modules and not (name + ".").startswith(m + ".")}
        for name, path in modules.items()
    }
    colour: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def cycle_from(name: str) -> list[str] | None:
        colour[name] = 1
        stack.append(name)
        for child in sorted(graph[name]):
            if colour.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in colour and (found := cycle_from(child)):
                return found
        colour[name] = 2
        stack.pop()
        return None

    cycles = [c for name in sorted(graph) if name not in colour and (c := cycle_from(name))]
    assert cycles == [], "import cycle: " + " -> ".join(cycles[0])


def test_function_level_internal_imports_are_few_and_each_says_why() -> None:
    found: list[str] = []
    unexplained: list[str] = []
    for name, path in _gvcore_modules().items():
        lines = path.read_text().splitlines()
        for lineno in _gvcore_imports(path)[1]:
            found.append(f"{name}:{lineno}")
            above = lineno - 2  # a comment may explain a block of consecutive imports
            while above > 0 and lines[above].strip().startswith(("from gvcore", "import gvcore")):
                above -= 1
            if not lines[above].strip().startswith(LAZY_REASONS):
                unexplained.append(f"{path.relative_to(ROOT)}:{lineno}")
    assert len(found) <= MAX_FUNCTION_LEVEL_IMPORTS, found
    assert unexplained == [], (
        f"function-level gvcore imports need a '# lazy:' or '# cycle:' comment: {unexplained}"
    )
