"""Dashboard configuration and session state: where things live, what the limits are, which device runs.

Everything is read from the environment at call time (never at import), so tests can point the dashboard at
fixtures with ``monkeypatch.setenv``:

- ``GVLAB_ASSETS``: the assets root holding ``checkpoints/*.safetensors`` and ``results/*.csv``
  (default ``<repo>/assets``, the bundled reproduction's output);
- ``GVLAB_RUNS``: folders holding training run directories, separated by ``os.pathsep``
  (default ``<repo>/runs`` and ``<assets>/runs``);
- ``GVLAB_DATA_ROOTS``: server-side image folders the Benchmark page may browse, separated by ``os.pathsep``
  (default ``<repo>/data``); browsing never leaves these roots (see :mod:`dashboard.safety`);
- ``GVLAB_CHECKPOINTS``: folders of your own checkpoints (``.safetensors``, ``.pth``, ``.pt``), separated by ``os.pathsep``
  (none by default), offered by Compare and Benchmark next to the bundled ones and your runs;
- ``GVLAB_DEVICE``: ``auto`` (default; CUDA when present), ``cpu`` or ``cuda`` (an error when absent);
- ``GVLAB_MAX_PIXELS``: the largest image (in pixels) an upload may have (default 16 MP).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_TTL_S",
    "DATA_CACHE_BYTES",
    "DISPLAY_MAX_SIDE",
    "HEATMAP_MAX_SIDE",
    "INFERENCE_TILE",
    "MAX_OUTPUT_PIXELS",
    "MIN_IMAGE_SIDE",
    "MODEL_CACHE_BYTES",
    "REPO_ROOT",
    "assets_root",
    "checkpoint_folders",
    "checkpoints_dir",
    "data_roots",
    "device",
    "max_upload_pixels",
    "results_dir",
    "runs_roots",
    "session_default",
]

#: The repository root (the folder holding ``dashboard/`` and ``pages/``).
REPO_ROOT: Path = Path(__file__).resolve().parent.parent

#: Smallest image side accepted for analysis (a few 8x8 patches; smaller images say nothing about variance).
MIN_IMAGE_SIDE = 16
#: Images wider or taller than this are downsampled for display (a note says so); computation uses full size.
DISPLAY_MAX_SIDE = 768
#: Full-resolution maps (gradients, errors) sent to the browser as heatmaps are pooled down to this side.
HEATMAP_MAX_SIDE = 256
#: Largest super-resolved output the Compare page computes (pixels), which bounds its memory use.
MAX_OUTPUT_PIXELS = 4_200_000
#: Tile side (in LR pixels) for tiled super-resolution, which keeps peak memory bounded on large images; the
#: ``gvcore eval`` default, so the pages' numbers are the CLI's to the bit (and a bundled image runs in one pass).
INFERENCE_TILE = 256
#: most patches a variance map may have in the explorer (a 12 MP image at stride 1 would have ~12 M and take
#: minutes and gigabytes; the limit keeps every map, its histogram and its download bounded).
MAX_PATCHES = 4_000_000
#: largest download the explorer embeds in the page (Streamlit sends it with the page, through the websocket).
MAX_DOWNLOAD_BYTES = 48 * 1024 * 1024

#: byte budget of the cache of images, outputs, maps and score tables (:data:`dashboard.loaders.DATA_CACHE`).
DATA_CACHE_BYTES = 256 * 1024 * 1024
#: byte budget of the cache of loaded models (:data:`dashboard.loaders.MODEL_CACHE`): a few uploads at the cap.
MODEL_CACHE_BYTES = 256 * 1024 * 1024
#: cached entries older than this many seconds are recomputed (and their memory freed meanwhile).
CACHE_TTL_S = 30 * 60
#: the server process's GIL switch interval (``sys.setswitchinterval``; Python's default is 5 ms): short enough
#: that the event loop serving files and websocket messages is not starved by a page script computing meanwhile.
GIL_SWITCH_INTERVAL_S = 0.0005

_DEFAULT_MAX_PIXELS = 16_000_000


def _paths_from_env(name: str, default: list[Path]) -> list[Path]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip()]


def assets_root() -> Path:
    """The assets root: ``$GVLAB_ASSETS`` or ``<repo>/assets``."""
    raw = os.environ.get("GVLAB_ASSETS", "").strip()
    return Path(raw).expanduser() if raw else REPO_ROOT / "assets"


def checkpoints_dir() -> Path:
    """Folder of the bundled checkpoints (``<assets>/checkpoints``)."""
    return assets_root() / "checkpoints"


def checkpoints_for(protocol: str) -> Path:
    """Checkpoints trained on a protocol's degradation, the only ones scored under it.

    ``<assets>/checkpoints`` for standard (MATLAB bicubic LR) or ``<assets>/checkpoints/official`` for
    official (PIL bilinear LR): a model is only scored on the LR its training LR was made like.
    """
    return checkpoints_dir() / "official" if protocol == "official" else checkpoints_dir()


def sweep_dir() -> Path:
    """The λ-sweep checkpoints (``<assets>/checkpoints/sweep``, standard degradation)."""
    return checkpoints_dir() / "sweep"


def results_dir() -> Path:
    """Folder of the bundled reproduction results (``<assets>/results``)."""
    return assets_root() / "results"


def runs_roots() -> list[Path]:
    """Folders searched for training run directories (``$GVLAB_RUNS`` or ``<repo>/runs``, ``<assets>/runs``)."""
    return _paths_from_env("GVLAB_RUNS", [REPO_ROOT / "runs", assets_root() / "runs"])


def data_roots() -> list[Path]:
    """Server-side image folders the Benchmark page may browse (``$GVLAB_DATA_ROOTS`` or ``<repo>/data``)."""
    return _paths_from_env("GVLAB_DATA_ROOTS", [REPO_ROOT / "data"])


def max_upload_pixels() -> int:
    """Largest accepted image, in pixels (``$GVLAB_MAX_PIXELS``, default 16 MP)."""
    raw = os.environ.get("GVLAB_MAX_PIXELS", "").strip()
    try:
        value = int(raw) if raw else _DEFAULT_MAX_PIXELS
    except ValueError:
        value = _DEFAULT_MAX_PIXELS
    return max(value, MIN_IMAGE_SIDE * MIN_IMAGE_SIDE)


def max_upload_bytes() -> int:
    """The upload cap in bytes (Streamlit's ``server.maxUploadSize``, in MB; 64 MB when unset)."""
    import streamlit as st

    try:
        megabytes = int(st.get_option("server.maxUploadSize") or 64)
    except (RuntimeError, TypeError, ValueError):
        megabytes = 64
    return max(1, megabytes) * 1024 * 1024


def device() -> str:
    """Where the dashboard runs models: ``$GVLAB_DEVICE``, resolved by :func:`gvcore.eval.inference.resolve_device`.

    ``auto`` (default): CUDA when present, else CPU; ``cpu``; ``cuda``.

    Raises:
        ValueError: an unknown ``GVLAB_DEVICE``, or ``cuda`` without a GPU (the message says which).
    """
    from gvcore.eval.inference import resolve_device

    return resolve_device(os.environ.get("GVLAB_DEVICE", "").strip() or "auto", "GVLAB_DEVICE")


def checkpoint_folders() -> list[Path]:
    """Folders of your own checkpoints offered by Compare and Benchmark (``$GVLAB_CHECKPOINTS``).

    Separated by ``os.pathsep``; none by default.
    """
    return _paths_from_env("GVLAB_CHECKPOINTS", [])


def session_default(state: Any, key: str, value: Any) -> Any:
    """Set ``state[key] = value`` unless present; return the stored value (works on ``st.session_state``)."""
    if key not in state:
        state[key] = value
    return state[key]


def listens_locally() -> bool:
    """Whether the server listens only where intended: loopback, or the address ``gvcore dashboard --host`` named."""
    import streamlit as st

    address = str(st.get_option("server.address") or "")
    if address in ("127.0.0.1", "localhost", "::1"):
        return True
    # `gvcore dashboard --host ADDR` asked for this address explicitly (and printed a warning)
    return os.environ.get("GVLAB_ALLOW_REMOTE") == "1"


#: most refused uploads a session remembers per uploader (oldest forgotten first).
MAX_REMEMBERED_REFUSALS = 64


class RefusalMemory(dict[str, str]):
    """Content digest -> why the upload was refused; keeps the :data:`MAX_REMEMBERED_REFUSALS` latest."""

    def __setitem__(self, key: str, value: str) -> None:
        """Remember ``key``; forget the oldest entries beyond the limit."""
        super().__setitem__(key, value)
        while len(self) > MAX_REMEMBERED_REFUSALS:
            del self[next(iter(self))]


def remember_refusals(session: Any, key: str) -> RefusalMemory:
    """The session's :class:`RefusalMemory` under ``key`` (created on first use; works on ``st.session_state``)."""
    memory = session_default(session, key, RefusalMemory())
    if not isinstance(memory, RefusalMemory):  # e.g. a plain dict left by an older version of the page
        memory = session[key] = RefusalMemory(memory)
    return memory


def take_histogram_box(histogram_key: str, range_key: str, bounds_key: str) -> None:
    """``on_select`` of the explorer's histogram: a dragged box becomes the highlight slider's range.

    The box is rounded outward to the slider's 0.1 steps and clipped to its bounds (``session_state[bounds_key]``),
    so the slider always shows what is highlighted. A module function (bound with ``functools.partial``), not one
    defined in the page script: a callback from the script would keep that run's globals (images, maps) alive.
    """
    import math

    import streamlit as st

    from dashboard.charts import selection_box

    xs = selection_box(st.session_state.get(histogram_key))
    if len(xs) != 2:
        return
    low, high = st.session_state.get(bounds_key, (min(xs), max(xs)))
    start = min(max(math.floor(min(xs) * 10) / 10, low), high)
    end = min(max(math.ceil(max(xs) * 10) / 10, low), high)
    st.session_state[range_key] = (round(start, 1), round(end, 1))


def favicon() -> Any:
    """A 32x32 favicon drawn here: gradient-variance patches (bright = high variance), as a PIL image."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:32, 0:32]
    tiles = ((x // 8 + y // 8) % 2 == 0).astype(np.float32)
    level = (60 + 170 * tiles * (x / 31.0)).astype(np.uint8)
    rgb = np.stack([level, (level * 0.55).astype(np.uint8), (level * 0.2).astype(np.uint8)], axis=-1)
    return Image.fromarray(rgb)
