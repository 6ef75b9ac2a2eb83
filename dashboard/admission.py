"""At most one analysis of a large image at a time, across all sessions of the server.

An analysis of a 16 MP image (the upload cap) holds several hundred MB while it runs: the decoded image, its
gradient maps, the arrays drawn from them. Those are a page run's working set, not cache entries, so the byte
caches cannot bound them: four browsers analysing 16 MP images at the same moment peaked at +1.4 GB on the real
server (``bench/bench_dashboard_server.py --big-uploads 4``). :func:`large_image_slot` makes the analyses of
images over :data:`LARGE_PIXELS` take turns (:data:`MAX_LARGE_ANALYSES` at once); smaller images never wait.

A slot is held per thread and re-entered freely (a page run that holds one may call a fragment that asks
again), and the wait polls: every ``poll_s`` seconds the ``waiting`` callback runs, which is where a page updates
its "waiting" note, and where Streamlit stops a run whose user has gone (its next element call raises), so a
waiting run never outlives its session. Nothing here imports Streamlit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["LARGE_PIXELS", "MAX_LARGE_ANALYSES", "large_image_slot"]

#: images with more pixels than this (about 2000x2000) are analysed one at a time.
LARGE_PIXELS = 4_000_000
#: large-image analyses allowed at once in the process.
MAX_LARGE_ANALYSES = 1

_slots = threading.BoundedSemaphore(MAX_LARGE_ANALYSES)
_held = threading.local()


@contextmanager
def large_image_slot(
    pixels: int, waiting: Callable[[float], None] | None = None, poll_s: float = 0.5
) -> Iterator[bool]:
    """Hold a large-image slot while the block runs, if ``pixels`` is over :data:`LARGE_PIXELS`.

    Args:
        pixels: the image's ``H * W``.
        waiting: called with the seconds waited so far, every ``poll_s`` while another analysis holds the slot.
        poll_s: how often to check; must be positive.

    Yields:
        Whether this block waited for its turn.
    """
    if not poll_s > 0:
        raise ValueError(f"poll_s must be positive, got {poll_s}")
    depth = getattr(_held, "depth", 0)
    if pixels <= LARGE_PIXELS or depth > 0:  # small, or this thread already holds the slot
        _held.depth = depth + 1 if depth > 0 else 0
        try:
            yield False
        finally:
            _held.depth = depth
        return
    started = time.monotonic()
    waited = False
    while not _slots.acquire(timeout=poll_s):
        waited = True
        if waiting is not None:
            waiting(time.monotonic() - started)
    _held.depth = 1
    try:
        yield waited
    finally:
        _held.depth = 0
        _slots.release()
