"""Session-wide test setup."""

from __future__ import annotations

import os
import tempfile

import torch

# The dashboard keeps what it computes once (landing views, atlases) in a user cache (dashboard.precomputed);
# tests write theirs to a temporary folder, never to the user's ~/.cache.
os.environ["GVLAB_CACHE"] = tempfile.mkdtemp(prefix="gvlab-test-cache-")

# Triton builds its own @jit helpers (tl.zeros, tl.sum, ...) for the interpreter only if TRITON_INTERPRET=1 is
# set when triton is first imported, and torch.compile imports triton. On machines without CUDA, set it before
# any test runs so the interpreter tests of gvcore.kernels.triton_gv work whatever order tests run in. It
# changes nothing else on CPU: gvcore uses Triton only through that module, and inductor's CPU backend
# generates C++. With CUDA present the variable is left alone (compiled kernels need the normal helpers).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
