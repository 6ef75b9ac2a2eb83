"""A memory probe for the dashboard server, loaded only by ``bench/bench_dashboard_server.py --probe``.

Python imports ``sitecustomize`` at start-up from ``sys.path``; the benchmark puts this folder on the server's
``PYTHONPATH`` and sets ``GVLAB_PROBE_LOG``. Without that variable this module does nothing. With it, a daemon
thread appends one JSON line to that file every ``GVLAB_PROBE_EVERY`` seconds (default 15), once Streamlit's
runtime exists, with where the server's memory is:

- ``rss_mib``: resident set size; ``malloc_*_mib``: glibc ``mallinfo2`` (heap ``arena``, ``in_use``, ``free``
  kept by the allocator, ``mmap`` = large blocks allocated now);
- ``tensors_mib`` / ``arrays_mib`` / ``bytes_mib``: CPU tensors' storages, numpy buffers and bytes objects over
  100 kB reachable from Python objects (``gc.get_objects`` and their referents, each counted once), and
  ``largest``: the shapes of the largest tensors and arrays;
- ``sessions`` / ``active_sessions``: Streamlit sessions known (connected or kept for reconnection) / connected;
  ``uploads_mib`` (files held by the uploaded-file manager) and ``upload_sessions`` (sessions owning them);
- ``data_cache_mib`` / ``model_cache_mib``: the dashboard's byte caches.

The probe only reads; it allocates no large buffer. It reads Streamlit internals (``Runtime._session_mgr``), as
``dashboard/housekeeping.py`` does.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
from typing import Any

MIB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {
        "malloc_arena_mib": info.arena / MIB,
        "malloc_in_use_mib": info.uordblks / MIB,
        "malloc_free_mib": info.fordblks / MIB,
        "malloc_mmap_mib": info.hblkhd / MIB,
    }


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reachable() -> dict[str, Any]:
    import numpy as np
    import torch

    totals = {"tensors": 0, "arrays": 0, "bytes": 0}
    seen: set[int] = set()
    largest: list[tuple[int, str]] = []
    for holder in gc.get_objects():
        for obj in (holder, *gc.get_referents(holder)):
            kind = type(obj)
            if id(obj) in seen:
                continue
            if issubclass(kind, torch.Tensor):
                size = obj.untyped_storage().nbytes() if obj.device.type == "cpu" else 0
                key, name = "tensors", f"tensor{tuple(obj.shape)}"
            elif issubclass(kind, np.ndarray) and obj.base is None:
                size, key, name = obj.nbytes, "arrays", f"array{obj.shape}"
            elif issubclass(kind, (bytes, bytearray)) and len(obj) > 100_000:
                size, key, name = len(obj), "bytes", f"bytes[{len(obj)}]"
            else:
                continue
            seen.add(id(obj))
            totals[key] += size
            largest.append((size, name))
    largest.sort(reverse=True)
    return {
        **{f"{k}_mib": v / MIB for k, v in totals.items()},
        "largest": [f"{name} {size / MIB:.0f} MiB" for size, name in largest[:6]],
    }


def _streamlit() -> dict[str, Any]:
    from streamlit import runtime

    if not runtime.exists():
        return {}
    rt = runtime.get_instance()
    sessions = rt._session_mgr
    storage = getattr(rt.uploaded_file_mgr, "file_storage", {})
    uploads = sum(len(rec.data) for files in list(storage.values()) for rec in list(files.values()))
    return {
        "sessions": len(sessions.list_sessions()),
        "active_sessions": len(sessions.list_active_sessions()),
        "uploads_mib": uploads / MIB,
        "upload_sessions": len(storage),
    }


def _caches() -> dict[str, float]:
    loaders = sys.modules.get("dashboard.loaders")
    if loaders is None:
        return {}
    return {
        "data_cache_mib": loaders.DATA_CACHE.total_bytes / MIB,
        "model_cache_mib": loaders.MODEL_CACHE.total_bytes / MIB,
    }


def sample() -> dict[str, Any]:
    """One probe record (see the module docstring)."""
    record: dict[str, Any] = {"time": time.time(), "rss_mib": _rss_mib(), **_malloc()}
    for part in (_reachable, _streamlit, _caches):
        try:
            record.update(part())
        except Exception as err:  # a probe must never take the server down
            record[f"{part.__name__.strip('_')}_error"] = repr(err)
    return record


def _loop(path: str, every: float) -> None:
    while True:
        time.sleep(every)
        if "streamlit.runtime" not in sys.modules:
            continue
        with open(path, "a") as log:
            log.write(json.dumps(sample()) + "\n")


if os.environ.get("GVLAB_PROBE_LOG"):
    threading.Thread(
        target=_loop,
        args=(os.environ["GVLAB_PROBE_LOG"], float(os.environ.get("GVLAB_PROBE_EVERY", "15"))),
        name="gvlab-memory-probe",
        daemon=True,
    ).start()
