"""UDP announce and scrape for the embedded tracker (BEP 15).

A client first asks for a connection id, then sends it with every announce and
scrape. The id is a keyed BLAKE2b MAC of the client's IP address and the current time
window, under a key derived from the instance secret: it cannot be forged by someone
who does not receive our answers (so a spoofed source address gets nothing but a short
error back), it is bound to one IP address, and it stops working after at most two
windows. Nothing is stored per client.

The id is bound to the IP and not the port, as opentracker does: libtorrent caches
connection ids per tracker for the whole process, so several sessions (or a
session that rebinds its socket) reuse one from another port, and a NAT may change
the port too. Only the IP matters against spoofing.

No answer is larger than the request that caused it, so the tracker cannot be used to
amplify traffic toward a spoofed address, except for peer lists, which need a valid
connection id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import cast

from holdfast.swarm import fastpath
from holdfast.swarm.tracker import AnnounceRefused, Event, Tracker, pack_ip

PROTOCOL_ID = 0x41727101980
ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3
MAX_SCRAPE_HASHES = 74  # what fits in one datagram on any path, by BEP 15's reckoning

# Peer lists are capped so an answer fits in one unfragmented datagram.
MAX_PEERS_IPV4 = 200  # 20 + 200 * 6 = 1220 bytes
MAX_PEERS_IPV6 = 74  # 20 + 74 * 18 = 1352 bytes

_HEADER = struct.Struct(">8sII")
_CONNECT_REPLY = struct.Struct(">II8s")
_ANNOUNCE = struct.Struct(">20s20sQQQIIIiH")
_ANNOUNCE_REPLY = struct.Struct(">IIIII")
_SCRAPE_ENTRY = struct.Struct(">III")
_REPLY_HEADER = struct.Struct(">II")  # action, transaction id
_FAST_REPLY = struct.Struct(">I4sIII")  # action, transaction id as sent, then the counts
_PROTOCOL_ID_BYTES = PROTOCOL_ID.to_bytes(8, "big")
logger = logging.getLogger(__name__)
_EVENTS = (Event.NONE, Event.COMPLETED, Event.STARTED, Event.STOPPED)


class ConnectionIds:
    """Issues and checks BEP 15 connection ids without storing anything per client.

    An id issued in window `w` (of `lifetime` seconds) is accepted in windows `w` and
    `w + 1`, so it lives between `lifetime` and `2 * lifetime` seconds; BEP 15 has
    clients use one for a minute.
    """

    def __init__(
        self,
        secret: bytes | str,
        *,
        lifetime: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if len(secret) < 16:
            raise ValueError("the connection id secret must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        # A key of its own, so a MAC made here is useless anywhere else the secret is used.
        self._key = hashlib.blake2b(secret, digest_size=32, person=b"holdfast-udp-cid").digest()
        self.lifetime = lifetime
        self._clock = clock
        # The current ids of recent clients: a client announces many times a minute
        # from one IP, and a dictionary lookup is much cheaper than a keyed hash.
        # Bounded; cleared when full.
        self._recent: dict[bytes, tuple[int, bytes, bytes]] = {}

    def _mac(self, window: int, ip: bytes) -> bytes:
        return hashlib.blake2b(
            window.to_bytes(8, "big") + ip, key=self._key, digest_size=8
        ).digest()

    def _ids(self, ip: bytes) -> tuple[int, bytes, bytes]:
        """(window, id of this window, id of the last one) for `ip`, cached."""
        window = int(self._clock() // self.lifetime)
        entry = self._recent.get(ip)
        if entry is None or entry[0] != window:
            if len(self._recent) >= 65536:
                self._recent.clear()
            if entry is not None and entry[0] == window - 1:
                previous = entry[1]
            else:
                previous = self._mac(window - 1, ip)
            entry = self._recent[ip] = (window, self._mac(window, ip), previous)
        return entry

    def issue(self, ip: bytes) -> bytes:
        """A connection id for a client at `ip` (packed)."""
        return self._ids(ip)[1]

    def check(self, connection_id: bytes, ip: bytes) -> bool:
        """Whether `connection_id` was issued to `ip` in this window or the last."""
        _window, current, previous = self._ids(ip)
        return hmac.compare_digest(connection_id, current) or hmac.compare_digest(
            connection_id, previous
        )


def error_packet(transaction_id: int, message: str, limit: int = 1024) -> bytes:
    """A BEP 15 error, cut to `limit` bytes (the size of the request it answers)."""
    return (_REPLY_HEADER.pack(ACTION_ERROR, transaction_id) + message.encode("utf-8"))[:limit]


class UDPResponder:
    """Answers one BEP 15 datagram from a Tracker; shared by both listeners.

    `answer` returns the reply, or None when there is nobody to answer. The tracker
    is used under its lock: the listener thread, the HTTP front ends and the
    instance's housekeeping share it.
    """

    def __init__(self, tracker: Tracker, connection_ids: ConnectionIds) -> None:
        self.tracker = tracker
        self.connection_ids = connection_ids

    def answer(self, data: bytes, host: str) -> bytes | None:
        size = len(data)
        if size < 16:
            return None  # too short to carry a transaction id: nobody to answer
        connection_id, action, transaction_id = _HEADER.unpack_from(data)
        try:
            ip = pack_ip(host)
        except OSError:
            return None
        if action == ACTION_CONNECT:
            if connection_id != _PROTOCOL_ID_BYTES:
                return error_packet(transaction_id, "bad protocol id", size)
            return _CONNECT_REPLY.pack(
                ACTION_CONNECT, transaction_id, self.connection_ids.issue(ip)
            )
        if not self.connection_ids.check(connection_id, ip):
            return error_packet(transaction_id, "invalid connection id", size)
        if action == ACTION_ANNOUNCE:
            return self._announce(data, transaction_id, ip)
        if action == ACTION_SCRAPE:
            return self._scrape(data, transaction_id)
        return error_packet(transaction_id, "unknown action", size)

    def _announce(self, data: bytes, transaction_id: int, ip: bytes) -> bytes:
        if len(data) < 98:
            return error_packet(transaction_id, "malformed announce", len(data))
        (infohash, _peer_id, _downloaded, left, _uploaded, event, _ip, _key, numwant, port) = (
            _ANNOUNCE.unpack_from(data, 16)
        )
        if event > 3:
            return error_packet(transaction_id, "invalid event")
        ipv4 = len(ip) == 4 or ip[:12] == b"\0\0\0\0\0\0\0\0\0\0\xff\xff"
        limit = MAX_PEERS_IPV4 if ipv4 else MAX_PEERS_IPV6
        tracker = self.tracker
        try:
            with tracker.lock:
                result = tracker.announce(
                    infohash,
                    ip,
                    port,
                    left=left,
                    event=_EVENTS[event],
                    numwant=min(numwant if numwant >= 0 else tracker.default_numwant, limit),
                    want_ipv4=ipv4,
                    want_ipv6=not ipv4,
                )
        except AnnounceRefused as exc:
            return error_packet(transaction_id, exc.reason)
        header = _ANNOUNCE_REPLY.pack(
            ACTION_ANNOUNCE, transaction_id, result.interval, result.leechers, result.seeders
        )
        return header + (result.peers if ipv4 else result.peers6)

    def _scrape(self, data: bytes, transaction_id: int) -> bytes:
        count, rest = divmod(len(data) - 16, 20)
        if count == 0 or rest:
            return error_packet(transaction_id, "malformed scrape", len(data))
        if count > MAX_SCRAPE_HASHES:
            return error_packet(transaction_id, "too many infohashes")
        infohashes = [data[offset : offset + 20] for offset in range(16, len(data), 20)]
        with self.tracker.lock:
            stats = self.tracker.scrape(infohashes)
        parts = [_REPLY_HEADER.pack(ACTION_SCRAPE, transaction_id)]
        for infohash in infohashes:
            s = stats.get(infohash)
            if s is None:
                parts.append(b"\0" * 12)
            else:
                parts.append(_SCRAPE_ENTRY.pack(s.seeders, s.completed, s.leechers))
        return b"".join(parts)


class UDPTrackerProtocol(asyncio.DatagramProtocol):
    """Answers BEP 15 datagrams from a Tracker, in an event loop."""

    def __init__(self, tracker: Tracker, connection_ids: ConnectionIds) -> None:
        self.tracker = tracker
        self.connection_ids = connection_ids
        self.responder = UDPResponder(tracker, connection_ids)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier answers (the client went away): nothing to do.
        pass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.transport is None:
            return
        reply = self.responder.answer(data, cast(str, addr[0]))
        if reply is not None:
            self.transport.sendto(reply, addr)


class UDPTrackerThread:
    """The UDP tracker on a thread of its own: a blocking socket loop.

    Cheaper per datagram than an event loop (no readiness polling, no callbacks):
    the thread blocks in `recvfrom`, which releases the GIL, answers, and goes back
    to waiting. When the tracker is a `fastpath.FastTracker` (its peers kept in C)
    the C listener does all of that instead, reading and answering up to 64
    datagrams per system call and holding the GIL only while it answers them.
    `stop()` wakes it with a datagram to itself and joins it.
    """

    def __init__(
        self,
        tracker: Tracker,
        host: str,
        port: int,
        *,
        secret: bytes | str,
        connection_id_lifetime: float = 60.0,
        receive_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        self.responder = UDPResponder(
            tracker, ConnectionIds(secret, lifetime=connection_id_lifetime)
        )
        self._sock = _bound_socket(host, port, receive_buffer)
        # A timeout only as a backstop: stop() normally wakes the thread at once.
        self._sock.settimeout(1.0)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._stopping = False
        # The C listener (holdfast.swarm.fastpath) when the tracker's store is in C.
        ids = self.responder.connection_ids
        self._fast = fastpath.listener(tracker, self._sock.fileno(), ids._key, ids.lifetime)
        if self._fast is not None:
            # Blocking, so the C listener waits in one recvmmsg per batch; the receive
            # timeout lets it notice stop() even if the wake-up datagram is lost.
            self._sock.settimeout(None)
            self._sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 250_000)
            )
        self._thread = threading.Thread(
            target=self._serve, name="holdfast-udp-tracker", daemon=True
        )

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._fast is not None:
            self._fast.stop()
        if self._thread.is_alive():
            family = self._sock.family
            host = self.address[0]
            if host in ("0.0.0.0", "::"):  # noqa: S104 - bound there: wake it on loopback
                host = "127.0.0.1" if family == socket.AF_INET else "::1"
            with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as wake:
                wake.sendto(b"", (host, self.address[1]))
            self._thread.join(timeout)
        self._sock.close()

    def _serve(self) -> None:
        """Answer datagrams until stopped.

        IPv4 announces from a client whose connection id is current take a short
        path inlined here (the bulk of the traffic); everything else goes through
        `UDPResponder.answer`, which gives the same answers. With a FastTracker the
        C listener answers everything, in batches, until stopped.
        """
        if self._fast is not None:
            try:
                self._fast.serve()
            except Exception:
                logger.exception("UDP tracker: the listener stopped")
            return
        sock = self._sock
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        responder = self.responder
        answer = responder.answer
        ids = responder.connection_ids
        recent = ids._recent
        clock = ids._clock
        lifetime = ids.lifetime
        tracker = responder.tracker
        lock = tracker.lock
        announce = tracker.announce
        default_numwant = tracker.default_numwant
        unpack_announce = _ANNOUNCE.unpack_from
        pack_reply = _FAST_REPLY.pack
        compare = hmac.compare_digest
        events = _EVENTS
        ips: dict[str, bytes] = {}  # textual IPv4 address -> packed, for the short path
        while not self._stopping:
            try:
                data, addr = recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                if self._stopping:
                    return
                continue  # an ICMP error for an earlier answer: the client went away
            try:
                host = addr[0]
                ip = ips.get(host)
                reply: bytes | None = None
                if ip is not None and len(data) >= 98 and data[8:12] == b"\0\0\0\x01":
                    entry = recent.get(ip)
                    cid = data[:8]
                    if (
                        entry is not None
                        and entry[0] == int(clock() // lifetime)
                        and (compare(cid, entry[1]) or compare(cid, entry[2]))
                    ):
                        (infohash, _p, _d, left, _u, event, _i, _k, numwant, port) = (
                            unpack_announce(data, 16)
                        )
                        if event <= 3:
                            if numwant < 0:
                                numwant = default_numwant
                            if numwant > MAX_PEERS_IPV4:
                                numwant = MAX_PEERS_IPV4
                            try:
                                with lock:
                                    result = announce(
                                        infohash,
                                        ip,
                                        port,
                                        left=left,
                                        event=events[event],
                                        numwant=numwant,
                                        want_ipv6=False,
                                    )
                                reply = (
                                    pack_reply(
                                        ACTION_ANNOUNCE,
                                        data[12:16],
                                        result.interval,
                                        result.leechers,
                                        result.seeders,
                                    )
                                    + result.peers
                                )
                            except AnnounceRefused as exc:
                                reply = error_packet(int.from_bytes(data[12:16]), exc.reason)
                if reply is None:
                    if ip is None:
                        with contextlib.suppress(OSError):
                            packed = pack_ip(host)
                            if len(packed) == 4:
                                if len(ips) >= 65536:
                                    ips.clear()
                                ips[host] = packed
                    reply = answer(data, host)
                if reply is not None:
                    sendto(reply, addr)
            except OSError:
                pass
            except Exception:  # never let one datagram end the listener
                logger.exception("UDP tracker: error answering %s", addr[0])


def _bound_socket(host: str, port: int, receive_buffer: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        # Bursts of announces should queue, not drop (the kernel caps this at rmem_max).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def start_udp_tracker(
    tracker: Tracker,
    host: str,
    port: int,
    *,
    secret: bytes | str,
    connection_id_lifetime: float = 60.0,
    receive_buffer: int = 4 * 1024 * 1024,
) -> tuple[asyncio.DatagramTransport, UDPTrackerProtocol]:
    """Listen for BEP 15 datagrams on host:port; close the transport to stop."""
    loop = asyncio.get_running_loop()
    sock = _bound_socket(host, port, receive_buffer)
    sock.setblocking(False)
    ids = ConnectionIds(secret, lifetime=connection_id_lifetime)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: UDPTrackerProtocol(tracker, ids), sock=sock
    )
    return transport, protocol
