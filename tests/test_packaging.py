"""The built wheel works on its own: built from a copy of the tree, installed into a folder, run from elsewhere.

``pip wheel`` (no build isolation: the running environment's setuptools, nothing downloaded) builds the wheel
from a copy of the source tree, so the checkout gets no ``build/`` or ``*.egg-info``; ``pip install --no-deps
--target`` puts it in a folder that is first on ``PYTHONPATH``; every command then runs from a directory
outside the source tree, so neither the checkout nor an editable install can stand in for the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "assets" / "checkpoints" / "espcn-x2-l1-s0.safetensors"
_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".ci-venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache", "runs", "_artifacts"
)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(wheel, target)``: the wheel built from a copy of the tree, and the folder it is installed into."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_COPY_IGNORE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheels")], cwd=tmp)
    (wheel,) = (tmp / "wheels").glob("gvcore-*.whl")
    _run([*pip, "install", "--no-deps", "--target", str(tmp / "target"), str(wheel)], cwd=tmp)
    return wheel, tmp / "target"


@pytest.fixture
def outside(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the source tree and an environment whose ``PYTHONPATH`` is the target."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["PYTHONPATH"] = str(built[1])
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return cwd, env


def test_wheel_contents(built: tuple[Path, Path]) -> None:
    names = set(zipfile.ZipFile(built[0]).namelist())
    pages = {f"dashboard/pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    assert pages
    assert pages <= names
    assert {"gvcore/py.typed", "gvcore/integrations/basicsr.py", "dashboard/app.py"} <= names
    assert not any(n.startswith(("tests/", "assets/")) for n in names)


def test_gvcore_comes_from_the_target(built: tuple[Path, Path], outside: tuple[Path, dict[str, str]]) -> None:
    cwd, env = outside
    code = "import gvcore, dashboard; print(gvcore.__file__); print(dashboard.__file__); print(gvcore.__version__)"
    lines = _run([sys.executable, "-c", code], cwd=cwd, env=env).stdout.split()
    assert Path(lines[0]).is_relative_to(built[1])
    assert Path(lines[1]).is_relative_to(built[1])
    assert built[0].name.startswith(f"gvcore-{lines[2]}-")


def test_eval_on_bundled_data(built: tuple[Path, Path], outside: tuple[Path, dict[str, str]]) -> None:
    cwd, env = outside
    gvcore_cli = str(built[1] / "bin" / "gvcore")
    csv = cwd / "eval.csv"
    args = [
        gvcore_cli,
        "eval",
        "--ckpt",
        str(CHECKPOINT),
        "--data",
        "bundled",
        "--scale",
        "2",
        "--no-progress",
    ]
    out = _run([*args, "--csv", str(csv)], cwd=cwd, env=env)
    assert f"| {CHECKPOINT.stem} | 20 |" in out.stdout  # the 20 bundled test images
    rows = csv.read_text().splitlines()
    assert sum(CHECKPOINT.stem in row for row in rows) == 20


def test_dashboard_help(built: tuple[Path, Path], outside: tuple[Path, dict[str, str]]) -> None:
    cwd, env = outside
    out = _run([str(built[1] / "bin" / "gvcore"), "dashboard", "--help"], cwd=cwd, env=env)
    assert "usage: gvcore dashboard" in out.stdout
