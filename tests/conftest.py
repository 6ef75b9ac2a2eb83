"""Session-wide test setup."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.image_fixtures import DEFAULT_IMAGES, NoiseImages

# The dashboard keeps what it computes once (landing views, atlases) in a user cache (dashboard.precomputed);
# tests write theirs to a temporary folder, never to the user's ~/.cache.
os.environ["GVLAB_CACHE"] = tempfile.mkdtemp(prefix="gvlab-test-cache-")
# Likewise the published models a developer fetched (gvcore zoo fetch) live in ~/.cache/gvcore/zoo and would be
# offered by every page: tests see an empty zoo (only the shipped published models), whatever the machine holds.
os.environ["GVLAB_ZOO"] = tempfile.mkdtemp(prefix="gvlab-test-zoo-")
# Nor may the machine's own configuration leak into a test: the dashboard's folders come from these variables.
for _name in (
    "GVLAB_ALLOW_REMOTE",
    "GVLAB_ASSETS",
    "GVLAB_CHECKPOINTS",
    "GVLAB_DATA_ROOTS",
    "GVLAB_DEVICE",
    "GVLAB_MAX_PIXELS",
    "GVLAB_RESULTS_DB",
    "GVLAB_RUNS",
):
    os.environ.pop(_name, None)

# Triton builds its own @jit helpers (tl.zeros, tl.sum, ...) for the interpreter only if TRITON_INTERPRET=1 is
# set when triton is first imported, and torch.compile imports triton. On machines without CUDA, set it before
# any test runs so the interpreter tests of gvcore.kernels.triton_gv work whatever order tests run in. It
# changes nothing else on CPU: gvcore uses Triton only through that module, and inductor's CPU backend
# generates C++. With CUDA present the variable is left alone (compiled kernels need the normal helpers).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

#: test modules that compare computed numbers with stored or independently computed ones. `.ci/run` runs them a
#: second time with one thread (``pytest -m numeric``), so drift that depends on the thread count is caught.
NUMERIC_MODULES = frozenset(
    {
        "test_amp.py",
        "test_evaluate.py",
        "test_gradients.py",
        "test_loss.py",
        "test_metrics.py",
        "test_official_protocol.py",
        "test_reproduce.py",
        "test_resize.py",
        "test_scoring.py",
        "test_stats.py",
        "test_variance.py",
    }
)


@pytest.fixture(autouse=True)
def _keep_the_real_main_module() -> Iterator[None]:
    """Put back the interpreter's ``__main__`` after each test.

    Streamlit's script runner (AppTest included) installs the page script as ``sys.modules["__main__"]`` and
    leaves it there. A later test that starts a ``spawn`` process pool (the reproduction, the shared results
    database) would then have every child re-run that page script as its main module, die on it, and break the
    pool: an order-dependent failure. Restoring the module keeps tests independent of their order.
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`NUMERIC_MODULES` with ``numeric``."""
    for item in items:
        if item.path.name in NUMERIC_MODULES:
            item.add_marker(pytest.mark.numeric)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the random-order seed at the end, also under ``-q`` (pytest-randomly prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(
            f"tests ran in random order: rerun this order with -p randomly --randomly-seed={seed}"
        )


@pytest.fixture(scope="module")
def images(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small noise images, shared by the module: its ``IMAGES`` (:mod:`tests.image_fixtures`)."""
    spec = getattr(request.module, "IMAGES", DEFAULT_IMAGES)
    if not isinstance(spec, NoiseImages):
        raise TypeError(f"{request.module.__name__}.IMAGES must be a NoiseImages, not {type(spec).__name__}")
    return spec.write(tmp_path_factory.mktemp(spec.folder))
