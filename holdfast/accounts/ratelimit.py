"""A small in-memory sliding-window rate limiter for authentication attempts.

Per process: with several server processes an attacker gets a few more tries, which
is acceptable for slowing password guessing; the limit is per address and per account.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from holdfast.errors import RateLimited

MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def check(self, key: str) -> None:
        """Raise RateLimited if `key` has used up its attempts."""
        now = time.monotonic()
        with self._lock:
            hits = self._recent(key, now)
            if hits is not None and len(hits) >= self.limit:
                retry = int(hits[0] + self.window - now) + 1
                raise RateLimited(
                    f"too many attempts; try again in {retry} seconds", retry_after=retry
                )

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) >= MAX_KEYS:
                # Memory stays bounded under a flood of distinct keys: forget the oldest.
                for stale in list(self._hits)[: MAX_KEYS // 10]:
                    del self._hits[stale]
            self._hits.setdefault(key, deque()).append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
