"""A bounded, thread-safe LRU cache of verified pieces that loads each piece once.

Readers run on more than one event loop (zarr's, fsspec's, the caller's), so the cache
is guarded by a lock and concurrent requests for the same piece wait on one
`concurrent.futures.Future` instead of fetching it twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0  # loads started
    shared: int = 0  # requests that waited for a load already under way
    evictions: int = 0


class PieceCache:
    """Least-recently-used pieces, at most `max_bytes` in total."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("the cache size cannot be negative")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._loading: dict[Hashable, Future[bytes]] = {}
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get_or_load(self, key: Hashable, load: Callable[[], bytes]) -> bytes:
        """The cached value of `key`, or `load()`'s result (cached), loading it only once."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.stats.hits += 1
                return value
            pending = self._loading.get(key)
            if pending is None:
                pending = Future()
                self._loading[key] = pending
                owner = True
                self.stats.misses += 1
            else:
                owner = False
                self.stats.shared += 1
        if not owner:
            return pending.result()
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self._store(key, value)
        pending.set_result(value)
        return value

    def claim(self, key: Hashable) -> tuple[Future[bytes], bool]:
        """A future for `key`, and whether the caller must load it (then `fulfil` or
        `fail` it). Cached values come back as completed futures."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.stats.hits += 1
                done: Future[bytes] = Future()
                done.set_result(value)
                return done, False
            pending = self._loading.get(key)
            if pending is not None:
                self.stats.shared += 1
                return pending, False
            pending = Future()
            self._loading[key] = pending
            self.stats.misses += 1
            return pending, True

    def fulfil(self, key: Hashable, value: bytes) -> None:
        with self._lock:
            pending = self._loading.pop(key, None)
            if pending is None:
                return  # failed meanwhile (the reader was closed): drop the value
            self._store(key, value)
        pending.set_result(value)

    def fail(self, key: Hashable, exc: BaseException) -> None:
        with self._lock:
            pending = self._loading.pop(key, None)
        if pending is not None:
            pending.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every load under way, so nobody waits for a fetch that will not finish."""
        with self._lock:
            pending = list(self._loading.values())
            self._loading.clear()
        for future in pending:
            future.set_exception(exc)

    def put(self, key: Hashable, value: bytes) -> None:
        with self._lock:
            self._store(key, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def _store(self, key: Hashable, value: bytes) -> None:
        # A piece larger than the whole cache is returned but not kept.
        if len(value) > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old)
        self._items[key] = value
        self._size += len(value)
        while self._size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted)
            self.stats.evictions += 1
