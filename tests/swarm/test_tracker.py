"""The tracker's peer store: announces, peer choice, stats, expiry and bounds."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from holdfast.swarm.tracker import (
    AllowList,
    AnnounceRefused,
    Event,
    SwarmStats,
    SwarmUpdate,
    Tracker,
    allow_all,
    maintain,
    pack_ip,
)

LOCAL = pack_ip("127.0.0.1")
V6 = pack_ip("2001:db8::1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def peers_of(blob: bytes, width: int = 6) -> set[int]:
    """The ports in a compact peer list."""
    assert len(blob) % width == 0
    return {
        int.from_bytes(blob[i + width - 2 : i + width], "big") for i in range(0, len(blob), width)
    }


def test_announce_counts_seeders_and_leechers_and_returns_other_peers() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash]))
    first = tracker.announce(infohash, LOCAL, 6001, left=0, event=Event.STARTED)
    assert (first.seeders, first.leechers, first.peers) == (1, 0, b"")
    second = tracker.announce(infohash, LOCAL, 6002, left=100, event=Event.STARTED)
    assert (second.seeders, second.leechers) == (1, 1)
    assert second.peers == LOCAL + (6001).to_bytes(2, "big")
    assert tracker.scrape([infohash]) == {infohash: SwarmStats(1, 1, 0)}


def test_a_seeder_is_given_only_leechers() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)
    for port in (7001, 7002, 7003):
        tracker.announce(infohash, LOCAL, port, left=0)
    tracker.announce(infohash, LOCAL, 7004, left=5)
    seeder = tracker.announce(infohash, LOCAL, 7001, left=0)
    assert peers_of(seeder.peers) == {7004}
    leecher = tracker.announce(infohash, LOCAL, 7004, left=5)
    assert peers_of(leecher.peers) == {7001, 7002, 7003}


def test_numwant_limits_and_samples_without_the_client_itself() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, default_numwant=20, max_numwant=30)
    for port in range(10_000, 10_100):
        tracker.announce(infohash, LOCAL, port, left=1)
    result = tracker.announce(infohash, LOCAL, 10_000, left=1, numwant=10)
    chosen = peers_of(result.peers)
    assert len(chosen) == 10 and 10_000 not in chosen
    assert len(peers_of(tracker.announce(infohash, LOCAL, 10_001, left=1, numwant=500).peers)) == 30
    assert tracker.announce(infohash, LOCAL, 10_002, left=1, numwant=0).peers == b""
    # Different samples for different announces (100 peers, 30 drawn: equal by chance ~never).
    draws = {tracker.announce(infohash, LOCAL, 10_003, left=1, numwant=30).peers for _ in range(5)}
    assert len(draws) > 1


def test_ipv6_peers_come_back_separately() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)
    tracker.announce(infohash, V6, 8001, left=0)
    tracker.announce(infohash, pack_ip("::ffff:10.0.0.7"), 8002, left=0)  # IPv4-mapped
    result = tracker.announce(infohash, LOCAL, 8003, left=1)
    assert result.peers6 == V6 + (8001).to_bytes(2, "big")
    assert result.peers == pack_ip("10.0.0.7") + (8002).to_bytes(2, "big")
    only_v4 = tracker.announce(infohash, LOCAL, 8003, left=1, want_ipv6=False)
    assert only_v4.peers6 == b"" and only_v4.peers


def test_completed_is_counted_once_per_peer_and_stopped_removes() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)
    tracker.announce(infohash, LOCAL, 6001, left=10, event=Event.STARTED)
    tracker.announce(infohash, LOCAL, 6001, left=0, event=Event.COMPLETED)
    tracker.announce(infohash, LOCAL, 6001, left=0, event=Event.COMPLETED)  # repeated
    assert tracker.stats(infohash) == SwarmStats(1, 0, 1)
    tracker.announce(infohash, LOCAL, 6002, left=10)
    stopped = tracker.announce(infohash, LOCAL, 6002, left=10, event=Event.STOPPED)
    assert stopped.peers == b""
    assert tracker.stats(infohash) == SwarmStats(1, 0, 1)
    tracker.announce(infohash, LOCAL, 6001, left=0, event=Event.STOPPED)
    assert tracker.swarm_count == 0 and tracker.peer_count == 0


def test_whitelist_refuses_unknown_infohashes_and_changes_nothing() -> None:
    known, unknown = os.urandom(20), os.urandom(20)
    allowed = AllowList([known])
    tracker = Tracker(is_allowed=allowed)
    with pytest.raises(AnnounceRefused, match="unregistered"):
        tracker.announce(unknown, LOCAL, 6001, left=0)
    assert tracker.swarm_count == 0 and tracker.drain_changed() == {}
    assert tracker.scrape([known, unknown]) == {known: SwarmStats(0, 0, 0)}


def test_a_removed_upload_stops_being_tracked_at_once() -> None:
    infohash = os.urandom(20)
    allowed = AllowList([infohash])
    tracker = Tracker(is_allowed=allowed)
    tracker.announce(infohash, LOCAL, 6001, left=0)
    allowed.discard(infohash)
    with pytest.raises(AnnounceRefused):
        tracker.announce(infohash, LOCAL, 6002, left=0)
    assert tracker.swarm_count == 0 and tracker.peer_count == 0
    assert tracker.scrape([infohash]) == {}


@pytest.mark.parametrize(
    ("infohash", "ip", "port", "left", "reason"),
    [
        (b"x" * 19, LOCAL, 6000, 0, "20 bytes"),
        (b"x" * 20, LOCAL, 0, 0, "port"),
        (b"x" * 20, LOCAL, 70000, 0, "port"),
        (b"x" * 20, LOCAL, 6000, -1, "left"),
        (b"x" * 20, b"\x7f\0\0", 6000, 0, "address"),
    ],
)
def test_invalid_announces_are_refused(
    infohash: bytes, ip: bytes, port: int, left: int, reason: str
) -> None:
    tracker = Tracker(is_allowed=allow_all)
    with pytest.raises(AnnounceRefused, match=reason):
        tracker.announce(infohash, ip, port, left=left)
    assert tracker.swarm_count == 0


def test_peers_expire_and_emptied_swarms_are_dropped() -> None:
    clock = Clock()
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, interval=100, min_interval=10, clock=clock)
    tracker.announce(infohash, LOCAL, 6001, left=0)
    clock.now += 100
    tracker.announce(infohash, LOCAL, 6002, left=1)
    clock.now += 60  # 6001 is 160 s old (> 150 = 1.5 x interval), 6002 is 60 s old
    result = tracker.announce(infohash, LOCAL, 6003, left=1)
    assert peers_of(result.peers) == {6002}
    assert (result.seeders, result.leechers) == (0, 2)
    clock.now += 1000
    assert tracker.expire() == 2
    assert tracker.swarm_count == 0 and tracker.peer_count == 0


def test_reannouncing_keeps_a_peer_alive() -> None:
    clock = Clock()
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, interval=100, min_interval=10, clock=clock)
    tracker.announce(infohash, LOCAL, 6001, left=0)
    tracker.announce(infohash, LOCAL, 6002, left=0)
    for _ in range(5):
        clock.now += 100
        tracker.announce(infohash, LOCAL, 6001, left=0)
    tracker.expire()
    assert tracker.stats(infohash) == SwarmStats(1, 0, 0)


def test_memory_bounds_keep_existing_swarms_working() -> None:
    a, b, c = os.urandom(20), os.urandom(20), os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, max_swarms=2, max_peers_per_swarm=3, max_peers=5)
    tracker.announce(a, LOCAL, 1, left=0)
    tracker.announce(b, LOCAL, 1, left=0)
    with pytest.raises(AnnounceRefused, match="full"):
        tracker.announce(c, LOCAL, 1, left=0)
    for port in range(2, 10):
        tracker.announce(a, LOCAL, port, left=1)
    assert tracker.stats(a) == SwarmStats(1, 2, 0)  # capped at 3 peers per swarm
    # A peer that could not be stored is still answered with peers.
    assert len(tracker.announce(a, LOCAL, 50, left=1).peers) == 18
    tracker.announce(b, LOCAL, 2, left=1)
    tracker.announce(b, LOCAL, 3, left=1)  # the 6th peer overall: over max_peers
    assert tracker.peer_count == 5 and tracker.stats(b) == SwarmStats(1, 1, 0)


def test_drain_changed_reports_each_change_once_with_new_completions() -> None:
    clock = Clock()
    a, b = os.urandom(20), os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, interval=100, min_interval=10, clock=clock)
    tracker.announce(a, LOCAL, 1, left=1)
    tracker.announce(a, LOCAL, 1, left=0, event=Event.COMPLETED)
    tracker.announce(b, LOCAL, 2, left=1)
    assert tracker.drain_changed() == {a: SwarmUpdate(1, 0, 1), b: SwarmUpdate(0, 1, 0)}
    assert tracker.drain_changed() == {}
    tracker.announce(a, LOCAL, 1, left=0)  # a re-announce changes nothing
    assert tracker.drain_changed() == {}
    clock.now += 1000
    tracker.expire()
    assert tracker.drain_changed() == {a: SwarmUpdate(0, 0, 0), b: SwarmUpdate(0, 0, 0)}


def test_hybrid_stats_count_a_peer_in_both_swarms_once() -> None:
    v1, v2 = os.urandom(20), os.urandom(32)
    tracker = Tracker(is_allowed=allow_all)
    tracker.announce(v1, LOCAL, 1, left=0)  # hybrid-aware seeder: both swarms
    tracker.announce(v2[:20], LOCAL, 1, left=0)
    tracker.announce(v1, LOCAL, 2, left=5)  # v1-only leecher
    tracker.announce(v2[:20], LOCAL, 3, left=0, event=Event.COMPLETED)  # v2-only
    assert tracker.hybrid_stats(v1, v2) == SwarmStats(2, 1, 1)
    tracker.announce(v1, LOCAL, 2, left=0, event=Event.COMPLETED)
    tracker.announce(v1, LOCAL, 4, left=0, event=Event.COMPLETED)
    assert tracker.hybrid_stats(v1, v2) == SwarmStats(4, 0, 2)  # completed: a lower bound


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="interval"):
        Tracker(is_allowed=allow_all, interval=10, min_interval=20)
    with pytest.raises(ValueError, match="peer_expiry"):
        Tracker(is_allowed=allow_all, interval=100, min_interval=10, peer_expiry=50)
    with pytest.raises(ValueError, match="positive"):
        Tracker(is_allowed=allow_all, max_swarms=0)


def test_maintain_expires_peers_and_hands_changes_to_the_catalogue() -> None:
    clock = Clock()
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all, interval=100, min_interval=10, clock=clock)
    stored: list[dict[bytes, SwarmUpdate]] = []
    failures = [True]

    async def store(updates: dict[bytes, SwarmUpdate]) -> None:
        if failures.pop(0) if failures else False:
            raise RuntimeError("database is locked")
        stored.append(dict(updates))

    async def until(condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.01)

    async def go() -> None:
        tracker.announce(infohash, LOCAL, 1, left=1)
        tracker.announce(infohash, LOCAL, 1, left=0, event=Event.COMPLETED)
        task = asyncio.ensure_future(maintain(tracker, store, every=0.01))
        # The first store fails; the next round stores the same update.
        await until(lambda: len(stored) == 1)
        clock.now += 1000
        await until(lambda: len(stored) == 2)
        task.cancel()

    asyncio.run(go())
    assert failures == []
    assert stored == [{infohash: SwarmUpdate(1, 0, 1)}, {infohash: SwarmUpdate(0, 0, 0)}]
    assert tracker.peer_count == 0
