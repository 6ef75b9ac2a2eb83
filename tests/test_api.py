"""The public API: every exported name resolves, and none shares its name with a gvcore module."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import gvcore


def test_no_public_name_is_also_a_module():
    clashes = [name for name in gvcore.__all__ if importlib.util.find_spec(f"gvcore.{name}") is not None]
    assert clashes == []


def test_functions_stay_callable_after_every_submodule_is_imported():
    code = (
        "import gvcore, gvcore.eval.evaluate, gvcore.training.run, gvcore.eval.scoring, gvcore.checkpoint.store\n"
        "assert callable(gvcore.evaluate) and callable(gvcore.train), (gvcore.evaluate, gvcore.train)\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_export_resolves():
    for name in gvcore.__all__:
        assert getattr(gvcore, name) is not None, name


def test_one_version_source():
    from importlib.metadata import version

    assert version("gvcore") == gvcore.__version__
    assert importlib.import_module("gvcore.checkpoint.store") is not None
