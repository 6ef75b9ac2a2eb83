r"""The one atomic file write of gvcore: checkpoints, resume states, run configs, images and CSV tables.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes and ``fsync``\ s it, gives it
ordinary permissions, renames it over the target (``os.replace``, atomic on POSIX) and ``fsync``\ s the folder so
the rename survives a power cut. A process killed at any instant (SIGKILL included) leaves either the previous
file or the new one, never a torn one; on any failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


def atomic_write(
    path: str | os.PathLike[str], payload: bytes | Callable[[IO[bytes]], object], mode: int | None = None
) -> Path:
    """Replace ``path`` with ``payload`` atomically and durably.

    Args:
        path: the target file; its folder must exist.
        payload: the bytes, or a function that writes them to the open binary file it is given.
        mode: permission bits of the result; default: the existing file's, else ``0o644``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the folder is missing or not writable, or the write failed (e.g. disk full); nothing is left
            behind and an existing file at ``path`` is unchanged.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = atomic_write(pathlib.Path(d) / "a.txt", b"hello")
        ...     p.read_bytes(), sorted(x.name for x in pathlib.Path(d).iterdir())
        (b'hello', ['a.txt'])
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if mode is None:
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(payload, (bytes, bytearray, memoryview)):
                handle.write(payload)
            else:
                payload(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)  # mkstemp creates 0600
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # make the rename durable; not possible on every platform
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target
