"""The dashboard server's housekeeping thread: release what ended sessions left behind, then trim the heap.

Streamlit keeps a disconnected session for ``server.disconnectedSessionTTL`` (120 s) so that a browser can
reconnect, and then drops it from its session storage **without shutting it down** (its storage has no removal
hook; streamlit/streamlit#12506). Shutting down is what removes a session's uploaded files and its media-file
references, so every session that uploads a file and never comes back leaves that file in the server's memory
for good: measured on the real server (``bench/bench_dashboard_server.py``), 150 MiB of uploads belonging to no
session remained after 2 browsers had left. :func:`release_orphaned_session_files` removes them; :func:`start`
runs it, and :func:`dashboard.bounded_cache.release_freed_memory`, every ``interval_s`` seconds.

Streamlit has no public API for the list of sessions, so this reads ``Runtime._session_mgr`` (the uploaded- and
media-file managers are public). If a Streamlit upgrade changes that, the housekeeping logs one warning and
goes on trimming; ``tests/test_housekeeping.py`` runs against the installed Streamlit.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from dashboard.bounded_cache import release_freed_memory

__all__ = ["release_orphaned_session_files", "start"]

_LOG = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None
_warned = False


def _runtime() -> Any:
    from streamlit import runtime

    return runtime.get_instance() if runtime.exists() else None


def release_orphaned_session_files(rt: Any = None) -> list[str]:
    """Remove the uploaded files and media-file references of sessions Streamlit no longer knows.

    A session is known while it is connected or kept for reconnection; its files are left alone. The candidates
    are read before the known sessions, so a session that connects meanwhile is never among them.

    Args:
        rt: the Streamlit runtime (default: the running one; nothing is done without one).

    Returns:
        The ids of the sessions whose leftovers were released.
    """
    rt = _runtime() if rt is None else rt
    if rt is None:
        return []
    uploads = rt.uploaded_file_mgr
    media = rt.media_file_mgr
    upload_owners = set(getattr(uploads, "file_storage", {}))
    media_owners = set(getattr(media, "_files_by_session_and_coord", {}))
    known = {info.session.id for info in rt._session_mgr.list_sessions()}
    orphans = (upload_owners | media_owners) - known
    for session_id in sorted(orphans):
        if session_id in upload_owners:
            uploads.remove_session_files(session_id)
        if session_id in media_owners:
            media.clear_session_refs(session_id)
    if orphans & media_owners:
        media.remove_orphaned_files()
    return sorted(orphans)


def _tick() -> None:
    global _warned
    try:
        released = release_orphaned_session_files()
        if released:
            _LOG.info("released the files of %d ended session(s)", len(released))
    except Exception:  # never let housekeeping stop the trim; say once why it cannot run
        if not _warned:
            _warned = True
            _LOG.warning("cannot release ended sessions' files (Streamlit internals changed?)", exc_info=True)
    gc.collect()  # what Streamlit's post-run collection did, off the visits' path (the launcher turns that off)
    release_freed_memory()


def start(interval_s: float = 30.0) -> threading.Thread:
    """Start, once per process, a daemon thread doing the housekeeping every ``interval_s`` seconds.

    Later calls return the running thread (whatever their ``interval_s``), so the dashboard's entry script can
    call this on every run.

    Args:
        interval_s: seconds between two rounds; must be positive.

    Returns:
        The (daemon) thread doing it.
    """
    global _thread
    if not interval_s > 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    with _lock:
        if _thread is None or not _thread.is_alive():

            def loop() -> None:
                while True:
                    time.sleep(interval_s)
                    _tick()

            _thread = threading.Thread(target=loop, name="gvlab-housekeeping", daemon=True)
            _thread.start()
        return _thread
