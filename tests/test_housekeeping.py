"""The server's housekeeping: files of sessions Streamlit dropped without shutting them down are released.

Runs against the installed Streamlit's real upload and media-file managers; only the session manager (which
lists the sessions Streamlit still knows) is a stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("streamlit")
from streamlit.runtime import media_file_manager
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from dashboard import housekeeping


@dataclass
class _Session:
    id: str


@dataclass
class _Info:
    session: _Session


class _SessionManager:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def list_sessions(self) -> list[_Info]:
        return [_Info(_Session(i)) for i in self.ids]


@dataclass
class _Runtime:
    uploaded_file_mgr: MemoryUploadedFileManager
    media_file_mgr: MediaFileManager
    _session_mgr: _SessionManager


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> _Runtime:
    uploads = MemoryUploadedFileManager("/_stcore/upload_file")
    media = MediaFileManager(MemoryMediaFileStorage("/media"))
    for session in ("alive", "kept-for-reconnect", "gone"):
        uploads.add_file(session, UploadedFileRec(f"{session}-f", f"{session}.png", "image/png", b"x" * 1000))
        monkeypatch.setattr(media_file_manager, "_get_session_id", lambda s=session: s)
        media.add(f"{session} figure".encode(), "image/png", f"coord-{session}")
    return _Runtime(uploads, media, _SessionManager(["alive", "kept-for-reconnect"]))


def test_files_of_sessions_streamlit_no_longer_knows_are_released(runtime: _Runtime) -> None:
    assert housekeeping.release_orphaned_session_files(runtime) == ["gone"]
    assert set(runtime.uploaded_file_mgr.file_storage) == {"alive", "kept-for-reconnect"}
    assert runtime.uploaded_file_mgr.get_files("gone", ["gone-f"]) == []
    assert len(runtime.uploaded_file_mgr.get_files("alive", ["alive-f"])) == 1
    assert len(runtime.media_file_mgr._file_metadata) == 2  # the ended session's figure was removed


def test_nothing_is_released_while_every_session_is_known(runtime: _Runtime) -> None:
    runtime._session_mgr.ids.append("gone")
    assert housekeeping.release_orphaned_session_files(runtime) == []
    assert len(runtime.uploaded_file_mgr.file_storage) == 3
    assert len(runtime.media_file_mgr._file_metadata) == 3


def test_without_a_runtime_nothing_happens() -> None:
    assert housekeeping.release_orphaned_session_files() == []


def test_housekeeping_starts_one_thread_per_process() -> None:
    first = housekeeping.start(3600)
    second = housekeeping.start(1)
    assert first is second
    assert first.is_alive()
    assert first.daemon


def test_housekeeping_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        housekeeping.start(0)
