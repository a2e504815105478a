"""The embedded tracker's peer store: swarms, announces, scrapes and expiry.

`Tracker` is a plain object with no I/O and no global state. The HTTP and UDP front
ends (`http_tracker`, `udp_tracker`) parse requests and call `Tracker.announce` and
`Tracker.scrape`; the instance runs `maintain(tracker, store)`, which expires
peers and hands the stats that changed (`Tracker.drain_changed`) to its catalogue.

A swarm is keyed by a 20-byte infohash: a v1 infohash, or a v2 infohash truncated to
its first 20 bytes (what v2 clients announce). A hybrid torrent is therefore two
swarms; `Tracker.hybrid_stats` counts the peers of both without counting twice.

Peers are keyed by their compact address (IP + port, as the tracker saw the IP), never
by the `peer_id` or an `ip` parameter the client sends, so one client cannot remove or
impersonate another, nor point a swarm at a third party.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

INFOHASH_LENGTH = 20

logger = logging.getLogger(__name__)


class Event(IntEnum):
    """Announce events, numbered as in BEP 15 (the HTTP tracker maps its words to these)."""

    NONE = 0
    COMPLETED = 1
    STARTED = 2
    STOPPED = 3


class AnnounceRefused(Exception):
    """The tracker will not serve this announce; `reason` goes back to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SwarmStats:
    """What a scrape reports for one swarm."""

    seeders: int
    leechers: int
    completed: int


@dataclass(frozen=True, slots=True)
class SwarmUpdate:
    """A swarm's stats as of a drain, for the catalogue.

    `newly_completed` counts the completions since the previous drain, so the
    catalogue adds it to its total: the tracker forgets swarms that empty out and
    starts from zero when the instance restarts, the catalogue does not.
    """

    seeders: int
    leechers: int
    newly_completed: int


class AnnounceResult(NamedTuple):
    interval: int
    min_interval: int
    seeders: int
    leechers: int
    completed: int
    peers: bytes  # compact IPv4 peers, 6 bytes each (BEP 23)
    peers6: bytes  # compact IPv6 peers, 18 bytes each (BEP 7)


@functools.lru_cache(maxsize=4096)
def pack_ip(host: str) -> bytes:
    """The packed form of a textual IP address (IPv6 zone ids dropped); OSError if invalid."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    return socket.inet_pton(socket.AF_INET, host)


def allow_all(infohash: bytes) -> bool:
    """The `is_allowed` of an open tracker: track any infohash."""
    return True


class AllowList:
    """A set of allowed infohashes, usable as `is_allowed`; the instance refreshes it
    from its catalogue (the check runs on every announce, so it must not touch the
    database)."""

    def __init__(self, infohashes: Iterable[bytes] = ()) -> None:
        self._infohashes: set[bytes] = set(infohashes)

    def __call__(self, infohash: bytes) -> bool:
        return infohash in self._infohashes

    def __len__(self) -> int:
        return len(self._infohashes)

    def add(self, infohash: bytes) -> None:
        self._infohashes.add(infohash)

    def discard(self, infohash: bytes) -> None:
        self._infohashes.discard(infohash)

    def replace(self, infohashes: Iterable[bytes]) -> None:
        self._infohashes = set(infohashes)


class _Peer:
    __slots__ = ("addr", "expires", "group", "slot")

    def __init__(self, addr: bytes, expires: float, group: int, slot: int) -> None:
        self.addr = addr
        self.expires = expires
        self.group = group  # index into _Swarm.groups: see _group()
        self.slot = slot  # position in that group's list


def _group(addr: bytes, seeder: bool) -> int:
    # 0: IPv4 leechers, 1: IPv4 seeders, 2: IPv6 leechers, 3: IPv6 seeders.
    return (2 if len(addr) == 18 else 0) | (1 if seeder else 0)


class _Swarm:
    __slots__ = ("completed", "groups", "last_sweep", "packed", "peers")

    def __init__(self, now: float) -> None:
        # Ordered by last announce (a re-announce moves a peer to the end), so the
        # peers due to expire are always at the front.
        self.peers: dict[bytes, _Peer] = {}
        # One list per group, for O(1) removal (swap with the last) and sampling.
        self.groups: tuple[list[_Peer], list[_Peer], list[_Peer], list[_Peer]] = ([], [], [], [])
        # Each group's addresses joined, kept until the group changes: most announces
        # are re-announces to small swarms, answered with the whole group.
        self.packed: list[bytes | None] = [None, None, None, None]
        self.completed = 0
        self.last_sweep = now

    @property
    def seeders(self) -> int:
        return len(self.groups[1]) + len(self.groups[3])

    @property
    def leechers(self) -> int:
        return len(self.groups[0]) + len(self.groups[2])

    def packed_group(self, group: int) -> bytes:
        packed = self.packed[group]
        if packed is None:
            packed = self.packed[group] = b"".join([p.addr for p in self.groups[group]])
        return packed

    def add(self, peer: _Peer) -> None:
        members = self.groups[peer.group]
        peer.slot = len(members)
        members.append(peer)
        self.packed[peer.group] = None
        self.peers[peer.addr] = peer

    def remove(self, peer: _Peer) -> None:
        del self.peers[peer.addr]
        self._unlist(peer)

    def move(self, peer: _Peer, group: int) -> None:
        self._unlist(peer)
        peer.group = group
        members = self.groups[group]
        peer.slot = len(members)
        members.append(peer)
        self.packed[group] = None

    def _unlist(self, peer: _Peer) -> None:
        members = self.groups[peer.group]
        self.packed[peer.group] = None
        last = members.pop()
        if last is not peer:
            members[peer.slot] = last
            last.slot = peer.slot


# The groups to draw peers from: (seeder, want IPv4, want IPv6) -> groups.
# Seeders are given only leechers.
_SELECTED = {
    (seeder, ipv4, ipv6): ((0,) if seeder else (0, 1)) * ipv4 + ((2,) if seeder else (2, 3)) * ipv6
    for seeder in (False, True)
    for ipv4 in (False, True)
    for ipv6 in (False, True)
}


def _without(packed: bytes, addr: bytes) -> bytes:
    """`packed` (compact addresses) without `addr`."""
    width = len(addr)
    at = packed.find(addr)
    while at >= 0 and at % width:
        at = packed.find(addr, at + 1)
    return packed if at < 0 else packed[:at] + packed[at + width :]


class Tracker:
    """Peers of the swarms this instance tracks.

    - `is_allowed(infohash) -> bool` decides which swarms exist: the catalogue's
      infohashes (see `AllowList`) or `allow_all` for an open tracker. It runs on
      every announce and must be fast.
    - A peer that has not announced for `peer_expiry` seconds is dropped.
    - Not thread-safe by itself: callers on several threads hold `lock`.
    - Memory is bounded by `max_swarms`, `max_peers_per_swarm` and `max_peers`: past
      them, announces are still answered but the new peer is not stored (and a new
      swarm is refused), so what is already tracked keeps working.
    """

    def __init__(
        self,
        *,
        is_allowed: Callable[[bytes], bool],
        interval: int = 1800,
        min_interval: int = 300,
        peer_expiry: float | None = None,
        max_swarms: int = 100_000,
        max_peers_per_swarm: int = 20_000,
        max_peers: int = 1_000_000,
        default_numwant: int = 50,
        max_numwant: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval < 1 or min_interval < 1 or min_interval > interval:
            raise ValueError("need 1 <= min_interval <= interval")
        if peer_expiry is None:
            # Long enough that a peer announcing on time is never dropped.
            peer_expiry = interval * 1.5
        if peer_expiry < interval:
            raise ValueError("peer_expiry must be at least the announce interval")
        if min(max_swarms, max_peers_per_swarm, max_peers, max_numwant) < 1:
            raise ValueError("memory bounds and max_numwant must be positive")
        if not 0 <= default_numwant <= max_numwant:
            raise ValueError("need 0 <= default_numwant <= max_numwant")
        self.is_allowed = is_allowed
        self.interval = interval
        self.min_interval = min_interval
        self.peer_expiry = float(peer_expiry)
        self.max_swarms = max_swarms
        self.max_peers_per_swarm = max_peers_per_swarm
        self.max_peers = max_peers
        self.default_numwant = default_numwant
        self.max_numwant = max_numwant
        self._clock = clock
        self._swarms: dict[bytes, _Swarm] = {}
        self._peer_count = 0
        # Swarms whose stats changed since the last drain, and completions not yet drained.
        self._changed: set[bytes] = set()
        self._undrained_completed: dict[bytes, int] = {}
        self._random = random.Random()  # peer sampling needs no secrecy
        # Not taken by the methods themselves: front ends and housekeeping running on
        # different threads hold it around each call.
        self.lock = threading.Lock()

    # --- size

    @property
    def swarm_count(self) -> int:
        return len(self._swarms)

    @property
    def peer_count(self) -> int:
        return self._peer_count

    # --- announce

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
        """Record one announce and choose peers for the announcing client.

        `ip` is the packed address the request came from (4 or 16 bytes; an
        IPv4-mapped IPv6 address counts as IPv4). `left == 0` means a seeder.
        Raises AnnounceRefused for an infohash this tracker does not track or
        for arguments no client would send.
        """
        if len(infohash) != INFOHASH_LENGTH:
            raise AnnounceRefused("info_hash must be 20 bytes")
        if not 0 < port < 65536:
            raise AnnounceRefused("invalid port")
        if left < 0:
            raise AnnounceRefused("invalid left")
        if len(ip) == 16 and ip[:12] == b"\0\0\0\0\0\0\0\0\0\0\xff\xff":
            ip = ip[12:]
        elif len(ip) not in (4, 16):
            raise AnnounceRefused("invalid address")
        if not self.is_allowed(infohash):
            # A removed upload stops being tracked at once, not when its peers expire.
            if infohash in self._swarms:
                self.forget(infohash)
            raise AnnounceRefused("unregistered torrent")

        now = self._clock()
        addr = ip + port.to_bytes(2, "big")
        swarm = self._swarms.get(infohash)
        if swarm is not None and now - swarm.last_sweep >= 1.0:
            self._sweep(infohash, swarm, now)
            swarm = self._swarms.get(infohash)
        if swarm is None:
            if event == Event.STOPPED:
                return AnnounceResult(self.interval, self.min_interval, 0, 0, 0, b"", b"")
            if len(self._swarms) >= self.max_swarms:
                raise AnnounceRefused("tracker is full, try later")
            swarm = self._swarms[infohash] = _Swarm(now)

        seeder = left == 0
        peer = swarm.peers.get(addr)
        changed = False
        if event == Event.STOPPED:
            if peer is not None:
                swarm.remove(peer)
                self._peer_count -= 1
                changed = True
            seeders, leechers = swarm.seeders, swarm.leechers
            if changed:
                self._changed.add(infohash)
                if not swarm.peers:
                    del self._swarms[infohash]
            return AnnounceResult(
                self.interval, self.min_interval, seeders, leechers, swarm.completed, b"", b""
            )

        group = _group(addr, seeder)
        if event == Event.COMPLETED and (peer is None or not peer.group & 1):
            swarm.completed += 1
            self._undrained_completed[infohash] = self._undrained_completed.get(infohash, 0) + 1
            changed = True
        if peer is None:
            if len(swarm.peers) < self.max_peers_per_swarm and self._peer_count < self.max_peers:
                swarm.add(_Peer(addr, now + self.peer_expiry, group, 0))
                self._peer_count += 1
                changed = True
        else:
            peer.expires = now + self.peer_expiry
            # Move to the end: the dict stays ordered by last announce.
            del swarm.peers[addr]
            swarm.peers[addr] = peer
            if peer.group != group:
                swarm.move(peer, group)
                changed = True
        if changed:
            self._changed.add(infohash)
        if not swarm.peers:
            # Full: the peer was not stored, and an empty swarm must not linger.
            del self._swarms[infohash]

        if numwant is None or numwant < 0:
            numwant = self.default_numwant
        elif numwant > self.max_numwant:
            numwant = self.max_numwant
        peers4, peers6 = self._choose(swarm, addr, seeder, numwant, want_ipv4, want_ipv6)
        return AnnounceResult(
            self.interval,
            self.min_interval,
            swarm.seeders,
            swarm.leechers,
            swarm.completed,
            peers4,
            peers6,
        )

    def _choose(
        self, swarm: _Swarm, addr: bytes, seeder: bool, numwant: int, ipv4: bool, ipv6: bool
    ) -> tuple[bytes, bytes]:
        """Up to `numwant` random peers other than the client; seeders get only leechers."""
        if numwant == 0:
            return b"", b""
        groups = swarm.groups
        selected = _SELECTED[seeder, ipv4, ipv6]
        total = 0
        for g in selected:
            total += len(groups[g])
        if total == 0:
            return b"", b""
        if total <= numwant + 1:
            # Everyone but the client: the groups' joined addresses, the client cut out.
            own = swarm.peers.get(addr)
            own_group = own.group if own is not None else -1
            parts4: list[bytes] = []
            parts6: list[bytes] = []
            for g in selected:
                packed = swarm.packed_group(g)
                if g == own_group:
                    packed = _without(packed, addr)
                (parts4 if g < 2 else parts6).append(packed)
            peers4 = b"".join(parts4)
            peers6 = b"".join(parts6)
            if len(peers4) // 6 + len(peers6) // 18 > numwant:
                if peers6:
                    peers6 = peers6[:-18]
                else:
                    peers4 = peers4[:-6]
            return peers4, peers6
        chosen: list[_Peer] = []
        for index in self._random.sample(range(total), numwant + 1):
            for g in selected:
                members = groups[g]
                if index < len(members):
                    chosen.append(members[index])
                    break
                index -= len(members)
        v4 = [p.addr for p in chosen if p.group < 2 and p.addr != addr]
        v6 = [p.addr for p in chosen if p.group >= 2 and p.addr != addr]
        if len(v4) + len(v6) > numwant:
            # The extra sample only covers for the client itself being drawn.
            if v6:
                v6.pop()
            else:
                v4.pop()
        return b"".join(v4), b"".join(v6)

    # --- scrape and stats

    def scrape(self, infohashes: Iterable[bytes]) -> dict[bytes, SwarmStats]:
        """Stats of each allowed infohash (zeros for a swarm with no peers);
        infohashes this tracker does not track are left out."""
        result: dict[bytes, SwarmStats] = {}
        for infohash in infohashes:
            swarm = self._swarms.get(infohash)
            if swarm is not None:
                result[infohash] = SwarmStats(swarm.seeders, swarm.leechers, swarm.completed)
            elif len(infohash) == INFOHASH_LENGTH and self.is_allowed(infohash):
                result[infohash] = SwarmStats(0, 0, 0)
        return result

    def stats(self, infohash: bytes) -> SwarmStats:
        """Stats of one swarm (zeros when no peer is known)."""
        swarm = self._swarms.get(infohash)
        if swarm is None:
            return SwarmStats(0, 0, 0)
        return SwarmStats(swarm.seeders, swarm.leechers, swarm.completed)

    def hybrid_stats(self, infohash_v1: bytes, infohash_v2: bytes) -> SwarmStats:
        """Stats of a hybrid torrent's two swarms together.

        Hybrid-aware clients announce to both swarms: a peer (by address) in
        both is counted once, as a seeder if it is one in either. Completions
        cannot be told apart that way (a hybrid-aware client reports its one
        completion to both swarms), so `completed` is the larger of the two: a
        lower bound. `infohash_v2` may be the full 32 bytes or already truncated.
        """
        merged: dict[bytes, bool] = {}
        completed = 0
        for infohash in (infohash_v1, infohash_v2[:INFOHASH_LENGTH]):
            swarm = self._swarms.get(infohash)
            if swarm is None:
                continue
            completed = max(completed, swarm.completed)
            for addr, peer in swarm.peers.items():
                merged[addr] = merged.get(addr, False) or bool(peer.group & 1)
        seeders = sum(merged.values())
        return SwarmStats(seeders, len(merged) - seeders, completed)

    def drain_changed(self) -> dict[bytes, SwarmUpdate]:
        """The swarms whose stats changed since the last drain, with their stats now.

        A swarm that emptied out reports zeros once, then is gone.
        """
        changed, self._changed = self._changed, set()
        undrained, self._undrained_completed = self._undrained_completed, {}
        updates: dict[bytes, SwarmUpdate] = {}
        for infohash in changed:
            swarm = self._swarms.get(infohash)
            newly = undrained.get(infohash, 0)
            if swarm is None:
                updates[infohash] = SwarmUpdate(0, 0, newly)
            else:
                updates[infohash] = SwarmUpdate(swarm.seeders, swarm.leechers, newly)
        return updates

    # --- housekeeping

    def forget(self, infohash: bytes) -> None:
        """Drop a swarm now (its upload was removed from the catalogue)."""
        swarm = self._swarms.pop(infohash, None)
        if swarm is not None:
            self._peer_count -= len(swarm.peers)
            self._changed.add(infohash)

    def expire(self) -> int:
        """Drop every peer that has not announced in time; returns how many.

        Announces already expire their own swarm as they go; this is for swarms
        nobody announces to any more. Call it every minute or so.
        """
        now = self._clock()
        before = self._peer_count
        for infohash, swarm in list(self._swarms.items()):
            self._sweep(infohash, swarm, now)
        return before - self._peer_count

    def _sweep(self, infohash: bytes, swarm: _Swarm, now: float) -> None:
        swarm.last_sweep = now
        expired: list[_Peer] = []
        for peer in swarm.peers.values():
            if peer.expires > now:
                break
            expired.append(peer)
        if expired:
            for peer in expired:
                swarm.remove(peer)
            self._peer_count -= len(expired)
            self._changed.add(infohash)
        if not swarm.peers:
            del self._swarms[infohash]


async def maintain(
    tracker: Tracker,
    store: Callable[[dict[bytes, SwarmUpdate]], Awaitable[None]],
    *,
    every: float = 60.0,
) -> None:
    """Expire peers and hand changed stats to `store` (the catalogue) every `every`
    seconds, until cancelled. A failing `store` loses nothing: its updates are
    merged into the next round."""
    pending: dict[bytes, SwarmUpdate] = {}
    while True:
        await asyncio.sleep(every)
        with tracker.lock:
            tracker.expire()
            drained = tracker.drain_changed()
        for infohash, update in drained.items():
            earlier = pending.get(infohash)
            if earlier is not None:
                update = SwarmUpdate(
                    update.seeders,
                    update.leechers,
                    update.newly_completed + earlier.newly_completed,
                )
            pending[infohash] = update
        if not pending:
            continue
        try:
            await store(pending)
        except Exception:
            logger.exception("storing swarm stats failed; retrying with the next round")
            continue
        pending = {}
