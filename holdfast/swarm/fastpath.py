"""The embedded tracker's peer store and UDP listener in C, when it is built.

`holdfast.swarm._udpfast` (holdfast/swarm/_udpfast.c, built by setup.py; optional) keeps
the swarms and answers BEP 15 datagrams without running Python code per datagram.
`FastTracker` is a `Tracker` whose peers live there: the HTTP tracker, the
housekeeping and the catalogue use it exactly as they use a `Tracker`, and
`UDPTrackerThread` hands its socket to the C listener when its tracker is one.

`make_tracker(...)` builds a `FastTracker` when the extension is importable and a
plain `Tracker` otherwise (or when HOLDFAST_TRACKER_PURE_PYTHON is set), with the same
arguments and the same behaviour.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from holdfast.swarm.tracker import (
    INFOHASH_LENGTH,
    AllowList,
    AnnounceRefused,
    AnnounceResult,
    Event,
    SwarmStats,
    SwarmUpdate,
    Tracker,
    allow_all,
)

_udpfast: Any
try:
    from holdfast.swarm import _udpfast  # type: ignore[attr-defined,no-redef]
except ImportError:  # not built: the pure-Python tracker does everything
    _udpfast = None

AVAILABLE = _udpfast is not None


def _allow_mode(is_allowed: Callable[[bytes], bool]) -> int:
    if is_allowed is allow_all:
        return 0
    if type(is_allowed) is AllowList:
        return 1  # the C side reads its `_infohashes` set directly
    return 2


class FastTracker(Tracker):
    """A `Tracker` whose swarms are kept by the C extension (same arguments, same
    answers; peers are sampled by a different random generator).

    Each call into the store runs whole while holding the GIL, so the C listener
    needs no `lock`; Python callers keep taking it as they do for a `Tracker`.
    """

    def __init__(self, *, is_allowed: Callable[[bytes], bool], **kwargs: Any) -> None:
        if _udpfast is None:
            raise RuntimeError("holdfast.swarm._udpfast is not built")
        self._store: Any = None
        super().__init__(is_allowed=is_allowed, **kwargs)
        clock = self._clock
        self._store = _udpfast.Store(
            is_allowed=self._allowed,
            allow_mode=_allow_mode(self._allowed),
            interval=self.interval,
            min_interval=self.min_interval,
            peer_expiry=self.peer_expiry,
            max_swarms=self.max_swarms,
            max_peers_per_swarm=self.max_peers_per_swarm,
            max_peers=self.max_peers,
            default_numwant=self.default_numwant,
            max_numwant=self.max_numwant,
            clock=None if clock is time.monotonic else clock,
        )

    @property
    def is_allowed(self) -> Callable[[bytes], bool]:
        return self._allowed

    @is_allowed.setter
    def is_allowed(self, value: Callable[[bytes], bool]) -> None:
        self._allowed = value
        if self._store is not None:
            self._store.set_allowed(value, _allow_mode(value))

    @property
    def swarm_count(self) -> int:
        return int(self._store.swarm_count)

    @property
    def peer_count(self) -> int:
        return int(self._store.peer_count)

    def announce(
        self,
        infohash: bytes,
        ip: bytes,
        port: int,
        *,
        left: int,
        event: Event = Event.NONE,
        numwant: int | None = None,
        want_ipv4: bool = True,
        want_ipv6: bool = True,
    ) -> AnnounceResult:
        if numwant is None or numwant < 0:
            numwant = self.default_numwant
        answer = self._store.announce(
            bytes(infohash),
            ip,
            port,
            left,
            int(event),
            min(numwant, self.max_numwant),
            want_ipv4,
            want_ipv6,
        )
        if isinstance(answer, str):
            raise AnnounceRefused(answer)
        seeders, leechers, completed, peers4, peers6 = answer
        return AnnounceResult(
            self.interval, self.min_interval, seeders, leechers, completed, peers4, peers6
        )

    def scrape(self, infohashes: Iterable[bytes]) -> dict[bytes, SwarmStats]:
        result: dict[bytes, SwarmStats] = {}
        stats = self._store.stats
        for infohash in infohashes:
            found = stats(bytes(infohash))
            if found is not None:
                result[infohash] = SwarmStats(*found)
            elif len(infohash) == INFOHASH_LENGTH and self._allowed(infohash):
                result[infohash] = SwarmStats(0, 0, 0)
        return result

    def stats(self, infohash: bytes) -> SwarmStats:
        found = self._store.stats(bytes(infohash))
        return SwarmStats(0, 0, 0) if found is None else SwarmStats(*found)

    def hybrid_stats(self, infohash_v1: bytes, infohash_v2: bytes) -> SwarmStats:
        merged: dict[bytes, bool] = {}
        completed = 0
        for infohash in (bytes(infohash_v1), bytes(infohash_v2[:INFOHASH_LENGTH])):
            found = self._store.stats(infohash)
            if found is None:
                continue
            completed = max(completed, found[2])
            for addr, seeder in self._store.peers(infohash):
                merged[addr] = merged.get(addr, False) or seeder
        seeders = sum(merged.values())
        return SwarmStats(seeders, len(merged) - seeders, completed)

    def drain_changed(self) -> dict[bytes, SwarmUpdate]:
        changed, undrained = self._store.drain()
        updates: dict[bytes, SwarmUpdate] = {}
        for infohash in changed:
            newly = undrained.get(infohash, 0)
            found = self._store.stats(infohash)
            if found is None:
                updates[infohash] = SwarmUpdate(0, 0, newly)
            else:
                updates[infohash] = SwarmUpdate(found[0], found[1], newly)
        return updates

    def forget(self, infohash: bytes) -> None:
        self._store.forget(bytes(infohash))

    def expire(self) -> int:
        return int(self._store.expire())


def make_tracker(*, is_allowed: Callable[[bytes], bool], **kwargs: Any) -> Tracker:
    """A `FastTracker` when the C extension is built, else a `Tracker`."""
    if AVAILABLE and not os.environ.get("HOLDFAST_TRACKER_PURE_PYTHON"):
        return FastTracker(is_allowed=is_allowed, **kwargs)
    return Tracker(is_allowed=is_allowed, **kwargs)


def listener(tracker: Tracker, fileno: int, key: bytes, lifetime: float) -> Any:
    """The C listener answering datagrams on `fileno` for a FastTracker, else None."""
    if _udpfast is None or not isinstance(tracker, FastTracker):
        return None
    return _udpfast.Listener(tracker._store, fileno, key, lifetime)


__all__ = ["AVAILABLE", "FastTracker", "listener", "make_tracker"]
