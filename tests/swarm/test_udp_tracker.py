"""UDP announce and scrape (BEP 15) over a real socket, and connection-id checks."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from holdfast.swarm.tracker import AllowList, SwarmStats, Tracker, allow_all, pack_ip
from holdfast.swarm.udp_tracker import (
    PROTOCOL_ID,
    ConnectionIds,
    UDPTrackerProtocol,
    start_udp_tracker,
)

SECRET = b"s" * 32


class UDPClient:
    """A blocking BEP 15 client socket, as a BitTorrent client would use."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(2.0)
        self.addr = ("127.0.0.1", port)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def ask(self, packet: bytes) -> bytes:
        self.sock.sendto(packet, self.addr)
        return self.sock.recv(65536)

    def connect(self) -> bytes:
        answer = self.ask(struct.pack(">QII", PROTOCOL_ID, 0, 11))
        assert struct.unpack_from(">II", answer) == (0, 11) and len(answer) == 16
        return answer[8:16]

    def announce(
        self, cid: bytes, infohash: bytes, port: int, left: int, event: int = 0, numwant: int = -1
    ) -> bytes:
        return self.ask(
            cid
            + struct.pack(
                ">II20s20sQQQIIIiH",
                1,
                22,
                infohash,
                b"-HF0001-" + os.urandom(12),
                0,
                left,
                0,
                event,
                0,
                0,
                numwant,
                port,
            )
        )

    def close(self) -> None:
        self.sock.close()


def with_udp_tracker(
    tracker: Tracker, body: Callable[[int], Any], *, lifetime: float = 60.0
) -> Any:
    """Run the UDP tracker in an event loop thread while `body(port)` talks to it."""

    async def go() -> Any:
        transport, _ = await start_udp_tracker(
            tracker, "127.0.0.1", 0, secret=SECRET, connection_id_lifetime=lifetime
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            return await asyncio.to_thread(body, port)
        finally:
            transport.close()

    return asyncio.run(go())


def error_text(answer: bytes) -> str:
    assert struct.unpack_from(">I", answer)[0] == 3
    return answer[8:].decode()


def test_connect_announce_and_scrape() -> None:
    infohash, other = os.urandom(20), os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash, other]))

    def body(port: int) -> None:
        client = UDPClient(port)
        cid = client.connect()
        first = client.announce(cid, infohash, 6001, left=0, event=2)
        assert struct.unpack(">IIIII", first) == (1, 22, 1800, 0, 1)
        second = client.announce(cid, infohash, 6002, left=10)
        assert struct.unpack_from(">IIIII", second) == (1, 22, 1800, 1, 1)
        assert second[20:] == pack_ip("127.0.0.1") + (6001).to_bytes(2, "big")
        scrape = client.ask(cid + struct.pack(">II", 2, 33) + infohash + other)
        assert struct.unpack(">IIIIIIII", scrape) == (2, 33, 1, 0, 1, 0, 0, 0)
        client.close()

    with_udp_tracker(tracker, body)
    assert tracker.stats(infohash) == SwarmStats(1, 1, 0)


def test_the_peer_is_the_packets_source_address_not_the_ip_field() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)

    def body(port: int) -> None:
        client = UDPClient(port)
        cid = client.connect()
        packet = bytearray(
            cid
            + struct.pack(
                ">II20s20sQQQIIIiH", 1, 1, infohash, b"p" * 20, 0, 0, 0, 0, 0, 0, -1, 6001
            )
        )
        packet[84:88] = socket.inet_aton("203.0.113.9")  # the optional ip field
        client.ask(bytes(packet))
        client.close()

    with_udp_tracker(tracker, body)
    result = tracker.announce(infohash, pack_ip("127.0.0.1"), 7000, left=5)
    assert result.peers == pack_ip("127.0.0.1") + (6001).to_bytes(2, "big")


def test_forged_and_borrowed_connection_ids_are_refused() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)

    def body(port: int) -> None:
        client, other = UDPClient(port), UDPClient(port, source="127.0.0.2")
        assert "invalid connection id" in error_text(
            client.announce(os.urandom(8), infohash, 6001, left=0)
        )
        # An id is bound to the IP address it was issued to.
        stolen = other.connect()
        assert "invalid connection id" in error_text(
            client.announce(stolen, infohash, 6001, left=0)
        )
        assert "invalid connection id" in error_text(
            client.ask(stolen + struct.pack(">II", 2, 1) + infohash)
        )
        client.close()
        other.close()

    with_udp_tracker(tracker, body)
    assert tracker.swarm_count == 0


def test_connection_ids_expire() -> None:
    now = [1_000_000.0]
    ids = ConnectionIds(SECRET, lifetime=60, clock=lambda: now[0])
    ip = pack_ip("192.0.2.1")
    cid = ids.issue(ip)
    assert ids.check(cid, ip)
    assert not ids.check(cid, pack_ip("192.0.2.2"))
    now[0] += 60  # the next window still accepts it
    assert ids.check(cid, ip)
    now[0] += 60  # two windows later it is dead
    assert not ids.check(cid, ip)
    assert ids.check(ids.issue(ip), ip)
    # Another secret, another id.
    assert not ConnectionIds(b"t" * 32, clock=lambda: now[0]).check(ids.issue(ip), ip)


def test_an_id_serves_every_port_of_its_ip() -> None:
    """As libtorrent expects: it caches ids per tracker across sessions and sockets."""
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)

    def body(port: int) -> None:
        first, second = UDPClient(port), UDPClient(port)
        cid = first.connect()
        assert struct.unpack_from(">I", second.announce(cid, infohash, 6001, left=0))[0] == 1
        first.close()
        second.close()

    with_udp_tracker(tracker, body)
    assert tracker.stats(infohash) == SwarmStats(1, 0, 0)


def test_expired_connection_id_over_the_wire() -> None:
    tracker = Tracker(is_allowed=allow_all)

    def body(port: int) -> None:
        client = UDPClient(port)
        cid = client.connect()
        import time

        time.sleep(2.2)  # lifetime 1 s: two windows have passed
        assert "invalid connection id" in error_text(
            client.announce(cid, os.urandom(20), 6001, left=0)
        )
        client.close()

    with_udp_tracker(tracker, body, lifetime=1.0)
    assert tracker.swarm_count == 0


def test_malformed_packets() -> None:
    known = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([known]))

    def body(port: int) -> None:
        client = UDPClient(port)
        cid = client.connect()
        # Errors answering 16-byte requests are cut to 16 bytes (no amplification).
        assert error_text(client.ask(struct.pack(">QII", 12345, 0, 1))) == "bad prot"
        assert error_text(client.ask(cid + struct.pack(">II", 1, 1))) == "malforme"
        assert "invalid event" in error_text(client.announce(cid, known, 6001, 0, event=9))
        assert "unregistered" in error_text(client.announce(cid, os.urandom(20), 6001, 0))
        assert "invalid port" in error_text(client.announce(cid, known, 0, 0))
        assert error_text(client.ask(cid + struct.pack(">II", 7, 1) + b"x" * 20)) == (
            "unknown action"
        )
        assert error_text(client.ask(cid + struct.pack(">II", 2, 1) + b"x" * 30)) == (
            "malformed scrape"
        )
        too_many = cid + struct.pack(">II", 2, 1) + os.urandom(20) * 75
        assert "too many" in error_text(client.ask(too_many))
        # Too short to carry a transaction id: silently dropped.
        client.sock.sendto(b"\0" * 15, client.addr)
        with pytest.raises(TimeoutError):
            client.sock.settimeout(0.3)
            client.sock.recv(100)
        client.close()

    with_udp_tracker(tracker, body)
    assert tracker.swarm_count == 0


def test_answers_are_never_larger_than_requests_without_a_valid_id() -> None:
    """No amplification toward a spoofed source address."""
    tracker = Tracker(is_allowed=allow_all)
    sent: list[bytes] = []

    class Transport:
        def sendto(self, data: bytes, addr: Any) -> None:
            sent.append(data)

    protocol = UDPTrackerProtocol(tracker, ConnectionIds(SECRET))
    protocol.connection_made(Transport())  # type: ignore[arg-type]
    requests = [
        struct.pack(">QII", PROTOCOL_ID, 0, 1),
        os.urandom(8) + struct.pack(">II", 1, 1) + os.urandom(82),
        os.urandom(8) + struct.pack(">II", 2, 1) + os.urandom(20),
        os.urandom(8) + struct.pack(">II", 9, 1),
        struct.pack(">QII", 1, 0, 1),
    ]
    for request in requests:
        protocol.datagram_received(request, ("198.51.100.1", 1))
    assert len(sent) == len(requests)
    for request, answer in zip(requests, sent, strict=True):
        assert len(answer) <= len(request)


def test_ipv6_clients_get_ipv6_peers() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=allow_all)
    tracker.announce(infohash, pack_ip("2001:db8::7"), 6001, left=0)
    tracker.announce(infohash, pack_ip("192.0.2.7"), 6002, left=0)

    def body(port: int) -> bytes:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.settimeout(2)
        sock.sendto(struct.pack(">QII", PROTOCOL_ID, 0, 1), ("::1", port))
        cid = sock.recv(100)[8:16]
        packet = cid + struct.pack(
            ">II20s20sQQQIIIiH", 1, 2, infohash, b"p" * 20, 0, 5, 0, 0, 0, 0, -1, 7000
        )
        sock.sendto(packet, ("::1", port))
        answer = sock.recv(1000)
        sock.close()
        return answer

    async def go() -> bytes:
        transport, _ = await start_udp_tracker(tracker, "::1", 0, secret=SECRET)
        port = transport.get_extra_info("sockname")[1]
        try:
            return await asyncio.to_thread(body, port)
        finally:
            transport.close()

    answer = asyncio.run(go())
    assert answer[20:] == pack_ip("2001:db8::7") + (6001).to_bytes(2, "big")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ConnectionIds(b"short")


def test_listener_thread_answers_as_the_responder_does() -> None:
    """The thread's short path for IPv4 announces gives the answers the general
    path gives, datagram for datagram, including refusals and bad connection ids."""
    from holdfast.swarm.udp_tracker import UDPResponder, UDPTrackerThread

    allowed = [os.urandom(20) for _ in range(3)]
    ids = ConnectionIds(SECRET)
    reference = UDPResponder(Tracker(is_allowed=AllowList(allowed)), ids)
    live = Tracker(is_allowed=AllowList(allowed))
    thread = UDPTrackerThread(live, "127.0.0.1", 0, secret=SECRET)
    thread.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)

        def both(packet: bytes) -> tuple[bytes, bytes]:
            sock.sendto(packet, ("127.0.0.1", thread.port))
            got = sock.recv(4096)
            expected = reference.answer(packet, "127.0.0.1")
            assert expected is not None
            return got, expected

        connect = struct.pack(">QII", PROTOCOL_ID, 0, 77)
        got, expected = both(connect)
        assert got == expected
        cid = got[8:16]

        def announce(infohash: bytes, port: int, left: int, event: int, numwant: int) -> bytes:
            return cid + struct.pack(
                ">II20s20sQQQIIIiH",
                1,
                port,  # transaction id
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

        packets = [
            announce(allowed[i % 3], 6000 + i % 7, 0 if i % 3 == 0 else 100, 2, 50)
            for i in range(30)
        ]
        packets += [
            announce(allowed[0], 6001, 0, 1, -1),  # completed, default numwant
            announce(allowed[1], 6002, 5, 3, 10),  # stopped
            announce(allowed[2], 6003, 5, 0, 1000),  # numwant above the cap
            announce(os.urandom(20), 6004, 0, 2, 50),  # not tracked
            announce(allowed[0], 6005, 0, 9, 50),  # bad event
            os.urandom(8) + announce(allowed[0], 6006, 0, 2, 50)[8:],  # bad connection id
        ]
        for packet in packets:
            got, expected = both(packet)
            assert got == expected
        assert live.scrape(allowed) == reference.tracker.scrape(allowed)
        sock.close()
    finally:
        thread.stop()
