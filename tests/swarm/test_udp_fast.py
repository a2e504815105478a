"""The C peer store and UDP listener (holdfast.swarm.fastpath) against the Python ones.

The UDP tracker's and the tracker core's own tests run again here with
`FastTracker` in place of `Tracker`; then the C listener answers datagram for
datagram what the Python responder answers, and survives hostile input with its
memory bounded.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

import tests.swarm.test_tracker as core_tests
import tests.swarm.test_udp_tracker as udp_tests
from holdfast.swarm import fastpath
from holdfast.swarm.tracker import AllowList, AnnounceRefused, Event, Tracker, allow_all, pack_ip
from holdfast.swarm.udp_tracker import (
    PROTOCOL_ID,
    ConnectionIds,
    UDPResponder,
    UDPTrackerThread,
)

if not fastpath.AVAILABLE:
    pytest.fail("holdfast.swarm._udpfast is not built: python setup.py build_ext --inplace")

from holdfast.swarm import _udpfast  # type: ignore[attr-defined]
from holdfast.swarm.fastpath import FastTracker, make_tracker

SECRET = b"s" * 32

# --- the existing tests, with the C store

_REUSED = [
    (module, name)
    for module in (udp_tests, core_tests)
    for name in sorted(vars(module))
    if name.startswith("test_") and callable(getattr(module, name))
]


@pytest.mark.parametrize(
    ("module", "name"), _REUSED, ids=[f"{m.__name__.rsplit('.', 1)[1]}.{n}" for m, n in _REUSED]
)
def test_the_python_tests_pass_with_the_c_store(
    module: Any, name: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(module, "Tracker", FastTracker)
    function = getattr(module, name)
    marker = getattr(function, "pytestmark", [])
    params = [m for m in marker if m.name == "parametrize"]
    if params:
        argnames, values = params[0].args[0], params[0].args[1]
        names = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else argnames
        for value in values:
            value = value.values if hasattr(value, "values") else value
            if len(names) == 1:
                value = (value,)
            function(**dict(zip(names, value, strict=True)))
    else:
        function()


# --- the C listener against the Python responder


def _pair(allowed: list[bytes] | None = None) -> tuple[UDPResponder, Any, FastTracker]:
    is_allowed: Any = allow_all if allowed is None else AllowList(allowed)
    reference = UDPResponder(Tracker(is_allowed=is_allowed), ConnectionIds(SECRET))
    fast = FastTracker(is_allowed=is_allowed)
    listener = fastpath.listener(fast, -1, reference.connection_ids._key, 60.0)
    assert listener is not None
    return reference, listener, fast


def _announce(
    cid: bytes,
    infohash: bytes,
    port: int,
    left: int,
    event: int,
    numwant: int,
    transaction: int = 5,
) -> bytes:
    return cid + struct.pack(
        ">II20s20sQQQIIIiH",
        1,
        transaction,
        infohash,
        os.urandom(20),
        0,
        left,
        0,
        event,
        0,
        0,
        numwant,
        port,
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "2001:db8::5", "::ffff:192.0.2.8"])
def test_the_c_listener_answers_as_the_python_responder(host: str) -> None:
    allowed = [os.urandom(20) for _ in range(4)]
    reference, listener, fast = _pair(allowed)
    ip = pack_ip(host)
    connect = struct.pack(">QII", PROTOCOL_ID, 0, 9)
    cid = listener.answer(connect, ip)[8:16]
    assert listener.answer(connect, ip) == reference.answer(connect, host)
    rng = random.Random(5)
    packets = []
    for i in range(300):
        packets.append(
            _announce(
                cid,
                allowed[rng.randrange(4)],
                6000 + rng.randrange(9),
                rng.choice([0, 0, 10, 2**64 - 1]),
                rng.choice([0, 0, 1, 2, 3]),
                rng.choice([-1, 0, 8, 50, 2**31 - 1, -(2**31)]),  # no sampling: 9 ports
                transaction=i,
            )
        )
    packets += [
        _announce(cid, os.urandom(20), 6001, 0, 2, 50),  # not tracked
        _announce(cid, allowed[0], 0, 0, 2, 50),  # invalid port
        _announce(cid, allowed[0], 6001, 0, 4, 50),  # bad event
        _announce(os.urandom(8), allowed[0], 6001, 0, 2, 50),  # bad connection id
        cid + struct.pack(">II", 2, 3) + b"".join(allowed) + os.urandom(20),  # scrape
        cid + struct.pack(">II", 2, 3) + b"x" * 30,
        cid + struct.pack(">II", 2, 3) + os.urandom(20) * 75,
        cid + struct.pack(">II", 9, 3),
        cid + struct.pack(">II", 1, 3) + b"y" * 50,
        struct.pack(">QII", 7, 0, 3),
        b"\0" * 15,
    ]
    for packet in packets:
        assert listener.answer(packet, ip) == reference.answer(packet, host), packet[8:16]
    assert fast.scrape(allowed) == reference.tracker.scrape(allowed)
    assert fast.drain_changed() == reference.tracker.drain_changed()
    assert fast.peer_count == reference.tracker.peer_count


def test_the_connection_id_mac_is_blake2b() -> None:
    for n in range(50):
        key, ip = os.urandom(32), os.urandom(4 if n % 2 else 16)
        window = random.randrange(2**40)
        expected = hashlib.blake2b(window.to_bytes(8, "big") + ip, key=key, digest_size=8).digest()
        assert _udpfast.mac(key, window, ip) == expected


# --- hostile input


@pytest.fixture
def live() -> Iterator[tuple[FastTracker, UDPTrackerThread, socket.socket]]:
    tracker = FastTracker(
        is_allowed=allow_all, max_swarms=50, max_peers_per_swarm=40, max_peers=300
    )
    thread = UDPTrackerThread(tracker, "127.0.0.1", 0, secret=SECRET)
    assert thread._fast is not None
    thread.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield tracker, thread, sock
    finally:
        sock.close()
        thread.stop()


def _ask(sock: socket.socket, thread: UDPTrackerThread, packet: bytes) -> bytes:
    sock.sendto(packet, ("127.0.0.1", thread.port))
    return sock.recv(65536)


def test_hostile_datagrams_get_short_errors_or_nothing(
    live: tuple[FastTracker, UDPTrackerThread, socket.socket],
) -> None:
    _tracker, thread, sock = live
    cid = _ask(sock, thread, struct.pack(">QII", PROTOCOL_ID, 0, 1))[8:16]
    # Short packets: nothing comes back, and the listener goes on answering.
    for size in range(16):
        sock.sendto(os.urandom(size), ("127.0.0.1", thread.port))
    wrong_action = _ask(sock, thread, cid + struct.pack(">II", 77, 2))
    assert wrong_action == struct.pack(">II", 3, 2) + b"unknown "
    bad_id = _ask(sock, thread, _announce(os.urandom(8), os.urandom(20), 6001, 0, 2, 50))
    assert bad_id[8:] == b"invalid connection id"
    # A huge numwant is capped: the answer fits one datagram.
    infohash = os.urandom(20)
    for port in range(7000, 7030):
        _ask(sock, thread, _announce(cid, infohash, port, 5, 2, 0))
    answer = _ask(sock, thread, _announce(cid, infohash, 6999, 5, 2, 2**31 - 1))
    assert struct.unpack_from(">IIIII", answer)[3:] == (31, 0)
    assert len(answer) == 20 + 6 * 30
    # 1000 hashes: cut to 2048 bytes on receipt, as the Python listener does.
    scrape = _ask(sock, thread, cid + struct.pack(">II", 2, 4) + os.urandom(20) * 1000)
    assert scrape == struct.pack(">II", 3, 4) + b"malformed scrape"
    # Random garbage with a valid id and each action: no crash, bounded answers.
    rng = random.Random(1)
    for i in range(600):
        body = rng.randbytes(rng.randrange(0, 200))
        packet = cid + struct.pack(">II", i % 4, i) + body
        sock.sendto(packet, ("127.0.0.1", thread.port))
        reply = sock.recv(65536)
        assert struct.unpack_from(">I", reply)[0] in (0, 1, 2, 3)
        assert len(reply) <= 20 + 6 * 200
    assert thread._thread.is_alive()


def test_memory_stays_bounded_under_a_flood_of_peers_and_swarms(
    live: tuple[FastTracker, UDPTrackerThread, socket.socket],
) -> None:
    tracker, thread, sock = live
    cid = _ask(sock, thread, struct.pack(">QII", PROTOCOL_ID, 0, 1))[8:16]
    refused = 0
    for i in range(1500):
        answer = _ask(
            sock,
            thread,
            _announce(cid, os.urandom(20) if i % 3 else b"h" * 20, 1 + i, i % 2, 2, 200),
        )
        refused += struct.unpack_from(">I", answer)[0] == 3
    assert tracker.swarm_count <= 50 and tracker.peer_count <= 300
    assert refused > 0  # "tracker is full, try later"
    assert tracker.stats(b"h" * 20).seeders + tracker.stats(b"h" * 20).leechers == 40
    # Expiry and removal keep working with the listener running.
    with tracker.lock:
        tracker.forget(b"h" * 20)
    assert tracker.stats(b"h" * 20).leechers == 0


def test_without_the_extension_everything_is_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(make_tracker(is_allowed=allow_all)) is FastTracker
    monkeypatch.setenv("HOLDFAST_TRACKER_PURE_PYTHON", "1")
    plain = make_tracker(is_allowed=allow_all)
    assert type(plain) is Tracker
    thread = UDPTrackerThread(plain, "127.0.0.1", 0, secret=SECRET)
    assert thread._fast is None
    thread.stop()
    monkeypatch.delenv("HOLDFAST_TRACKER_PURE_PYTHON")
    monkeypatch.setattr(fastpath, "AVAILABLE", False)
    assert type(make_tracker(is_allowed=allow_all)) is Tracker


def test_the_allow_list_is_read_live() -> None:
    allowed = AllowList()
    tracker = FastTracker(is_allowed=allowed)
    infohash = os.urandom(20)
    ip = pack_ip("192.0.2.1")
    with pytest.raises(Exception, match="unregistered"):
        tracker.announce(infohash, ip, 6000, left=0)
    allowed.replace([infohash])
    assert tracker.announce(infohash, ip, 6000, left=0).seeders == 1
    allowed.discard(infohash)
    with pytest.raises(Exception, match="unregistered"):
        tracker.announce(infohash, ip, 6000, left=0)
    assert tracker.swarm_count == 0 and tracker.peer_count == 0
    tracker.is_allowed = allow_all
    assert tracker.announce(infohash, ip, 6000, left=0).seeders == 1


def test_the_c_listener_over_ipv6_announces_and_scrapes() -> None:
    infohash = os.urandom(20)
    tracker = FastTracker(is_allowed=AllowList([infohash]))
    tracker.announce(infohash, pack_ip("2001:db8::7"), 6001, left=0)
    tracker.announce(infohash, pack_ip("192.0.2.7"), 6002, left=0)
    thread = UDPTrackerThread(tracker, "::1", 0, secret=SECRET)
    assert thread._fast is not None
    thread.start()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.settimeout(5)
    try:
        sock.sendto(struct.pack(">QII", PROTOCOL_ID, 0, 1), ("::1", thread.port))
        cid = sock.recv(100)[8:16]
        sock.sendto(_announce(cid, infohash, 7000, 5, 2, -1), ("::1", thread.port))
        answer = sock.recv(1000)
        assert struct.unpack_from(">IIIII", answer)[3:] == (1, 2)  # leechers, seeders
        assert answer[20:] == pack_ip("2001:db8::7") + (6001).to_bytes(2, "big")
        sock.sendto(
            cid + struct.pack(">II", 2, 8) + infohash + os.urandom(20), ("::1", thread.port)
        )
        assert sock.recv(1000) == struct.pack(">IIIIIIII", 2, 8, 2, 0, 1, 0, 0, 0)
    finally:
        sock.close()
        thread.stop()
    assert tracker.stats(infohash).leechers == 1


@pytest.mark.parametrize("seed", range(4))
def test_random_announces_give_what_the_python_store_gives(seed: int) -> None:
    """Announces, stops, completions, expiry, forgetting and the memory bounds, in a
    random order against both stores: the same answers, peer for peer (numwant large
    enough that nobody is sampled at random)."""
    rng = random.Random(seed)
    now = [1000.0]
    options: dict[str, Any] = {
        "interval": 60,
        "min_interval": 30,
        "max_swarms": 6,
        "max_peers_per_swarm": 40,
        "max_peers": 120,
        "clock": lambda: now[0],
    }
    infohashes = [bytes([i]) * 20 for i in range(8)]
    allowed = AllowList(infohashes[:7])
    python, fast = (
        Tracker(is_allowed=allowed, **options),
        FastTracker(is_allowed=allowed, **options),
    )
    hosts = [pack_ip(f"10.0.0.{i}") for i in range(6)] + [
        pack_ip(f"2001:db8::{i}") for i in range(4)
    ]
    for step in range(4000):
        roll = rng.random()
        if roll < 0.01:
            now[0] += rng.choice([1.0, 30.0, 91.0])
            assert python.expire() == fast.expire()
        elif roll < 0.015:
            infohash = rng.choice(infohashes)
            python.forget(infohash)
            fast.forget(infohash)
        else:
            now[0] += rng.random() * 0.2
            args = (rng.choice(infohashes), rng.choice(hosts), rng.randrange(6000, 6012))
            kwargs: dict[str, Any] = {
                "left": rng.choice([0, 0, 7]),
                "event": rng.choice(
                    [Event.NONE, Event.NONE, Event.STARTED, Event.COMPLETED, Event.STOPPED]
                ),
                "numwant": rng.choice([None, 200]),
                "want_ipv4": rng.random() < 0.8,
                "want_ipv6": rng.random() < 0.8,
            }
            outcomes = []
            for tracker in (python, fast):
                try:
                    outcomes.append(tracker.announce(*args, **kwargs))
                except AnnounceRefused as exc:
                    outcomes.append(exc.reason)
            assert outcomes[0] == outcomes[1], step
        assert (python.swarm_count, python.peer_count) == (fast.swarm_count, fast.peer_count)
        if step % 97 == 0:
            assert python.drain_changed() == fast.drain_changed()
            assert python.scrape(infohashes) == fast.scrape(infohashes)
            assert python.hybrid_stats(infohashes[0], infohashes[1]) == fast.hybrid_stats(
                infohashes[0], infohashes[1]
            )
