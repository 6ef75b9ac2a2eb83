"""A process-wide memo cache bounded in bytes, with expiry: the dashboard's memory ceiling for arrays and models.

Streamlit's ``st.cache_data`` / ``st.cache_resource`` bound a cache by its number of entries only, so twenty
1500x1500 uploads (each with ~40 MB of maps) or a few 16 MP images fill the server's memory for good.
:class:`ByteBudgetCache` keeps the least recently used entries that fit ``max_bytes`` (sizes measured by
:func:`nbytes`: tensor storages, numpy buffers, DataFrame columns, recursively through dicts, lists, tuples and
dataclasses), drops entries older than ``ttl_s``, and returns the cached object itself (no copy): callers must
treat it as read-only, as they do with ``st.cache_resource``. A value larger than the whole budget is returned
but not kept. Nothing here imports Streamlit.

Example:
    >>> import numpy as np
    >>> cache = ByteBudgetCache("demo", max_bytes=1000, ttl_s=60)
    >>> a = cache.get_or_compute("a", lambda: np.zeros(100, dtype=np.float32))  # 400 bytes
    >>> b = cache.get_or_compute("b", lambda: np.zeros(200, dtype=np.float32))  # 800 bytes: "a" is evicted
    >>> cache.keys(), cache.total_bytes
    (['b'], 800)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import inspect
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np
import torch

__all__ = [
    "ByteBudgetCache",
    "budget_cached",
    "nbytes",
    "release_freed_memory",
]

P = ParamSpec("P")
R = TypeVar("R")


def nbytes(value: Any, _seen: set[int] | None = None) -> int:
    """Bytes held by ``value``: tensors (their storage), numpy arrays, DataFrames, bytes, and containers of them.

    Objects reached twice are counted once. Modules count their parameters and buffers. Anything else counts
    ``sys.getsizeof``.
    """
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return int(value.untyped_storage().nbytes()) if value.device.type != "meta" else 0
    if isinstance(value, np.ndarray):
        base = value.base
        if isinstance(base, (np.ndarray, torch.Tensor, bytes, bytearray, memoryview)):
            return nbytes(base, seen)  # a view: count the buffer it shares once
        return int(value.nbytes)
    if isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return sum(nbytes(t, seen) for t in tensors)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if _is_frame(value):
        usage = value.memory_usage(
            index=True, deep=False
        )  # a Series per column for a frame, an int for a Series
        return int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    if isinstance(value, dict):
        return sum(nbytes(k, seen) + nbytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(nbytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return int(sys.getsizeof(value))


def _is_frame(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series))


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand memory freed by evictions back to the operating system (glibc ``malloc_trim``; a no-op elsewhere).

    glibc keeps freed blocks of large arrays in its arenas (its mmap threshold grows after each large free), so
    without this the server's resident size stays at its high-water mark even after the cache let go.
    """
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)


_MISSING = object()  # what ByteBudgetCache._lookup returns for an absent key (None may be a cached value)


@dataclasses.dataclass
class _Entry:
    value: Any
    size: int
    stored_at: float


class ByteBudgetCache:
    """Least-recently-used cache that holds at most ``max_bytes`` and forgets entries after ``ttl_s`` seconds.

    Args:
        name: shown in :meth:`__repr__` (which cache it is).
        max_bytes: budget for all entries together; must be positive.
        ttl_s: an entry older than this is recomputed; must be positive.
        clock: time source (a seam for tests).

    Thread-safe: Streamlit runs sessions in threads. Two sessions missing the same key at once may both compute
    it; the second result replaces the first.
    """

    def __init__(
        self, name: str, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Validate the budget and lifetime; the cache starts empty."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int; got {max_bytes!r}")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0; got {ttl_s!r}")
        self.name = name
        self.max_bytes = max_bytes
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self.total_bytes = 0

    def __repr__(self) -> str:
        """Name, entry count, bytes used of the budget, and lifetime."""
        return (
            f"ByteBudgetCache({self.name!r}, {len(self._entries)} entries, "
            f"{self.total_bytes}/{self.max_bytes} bytes, ttl {self.ttl_s:g} s)"
        )

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def _lookup(self, key: Hashable) -> Any:
        """The cached value of ``key`` (marked most recently used), or :data:`_MISSING`."""
        with self._lock:
            self._expire()
            entry = self._entries.get(key)
            if entry is None:
                return _MISSING
            self._entries.move_to_end(key)
            return entry.value

    def get(self, key: Hashable) -> Any:
        """The cached value of ``key`` (now the most recently used), or ``None`` when absent or expired."""
        value = self._lookup(key)
        return None if value is _MISSING else value

    def get_or_compute(self, key: Hashable, compute: Callable[[], R]) -> R:
        """The cached value of ``key``, or ``compute()`` (stored when it fits the budget)."""
        value = self._lookup(key)
        if value is not _MISSING:
            return cast("R", value)
        value = compute()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` under ``key``, evicting least recently used entries to stay within the budget."""
        size = nbytes(value)
        evicted = False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.total_bytes -= old.size
            if size <= self.max_bytes:
                while self._entries and self.total_bytes + size > self.max_bytes:
                    _, dropped = self._entries.popitem(last=False)
                    self.total_bytes -= dropped.size
                    evicted = True
                self._entries[key] = _Entry(value, size, self._clock())
                self.total_bytes += size
        if evicted or old is not None:
            release_freed_memory()

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self.total_bytes = 0
        release_freed_memory()

    def _expire(self) -> None:
        now = self._clock()
        stale = [k for k, e in self._entries.items() if now - e.stored_at > self.ttl_s]
        for key in stale:
            self.total_bytes -= self._entries.pop(key).size
        if stale:
            release_freed_memory()


def budget_cached(
    cache: ByteBudgetCache, around: Callable[[], AbstractContextManager[Any]] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Memoise a function in ``cache``, keyed like ``st.cache_data``.

    The key is every argument whose name does not start with ``_`` (those must be hashable; ``_``-prefixed ones,
    e.g. tensors, are identified by a key argument next to them).

    Args:
        cache: where results live (several functions may share one budget; keys include the function name).
        around: a context manager entered only while computing a missing value (e.g. a spinner).

    The wrapper has ``clear()``, which empties ``cache``.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = (fn.__qualname__, *((k, v) for k, v in bound.arguments.items() if not k.startswith("_")))

            def compute() -> R:
                with around() if around is not None else nullcontext():
                    return fn(*args, **kwargs)

            return cache.get_or_compute(key, compute)

        wrapper.clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorate
