"""Hostile trackers: small servers on 127.0.0.1 that answer whatever a test tells them to.

They stand in for the misbehaving public internet (real, well-behaved trackers are
tested with opentracker); the scrape client must survive all of them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from holdfast.torrents import bencode

# What a fake HTTP tracker sends back: raw bytes, or chunks sent with pauses between.
Reply = bytes | list[bytes]


def http_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None, *, length: bool = True
) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def requested_infohashes(target: bytes) -> list[bytes]:
    query = urlsplit(target.decode("latin-1")).query
    return [
        unquote_to_bytes(part.split("=", 1)[1])
        for part in query.split("&")
        if part.startswith("info_hash=")
    ]


def scrape_body(stats: dict[bytes, tuple[int, int, int]], **extra: Any) -> bytes:
    files = {
        h: {b"complete": s, b"incomplete": leech, b"downloaded": done}
        for h, (s, leech, done) in stats.items()
    }
    return bencode.encode({b"files": files, **extra})


class FakeHTTPTracker:
    def __init__(self, respond: Callable[[bytes], Reply]) -> None:
        self.respond = respond
        self.targets: list[bytes] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/announce") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> FakeHTTPTracker:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ")[1]
            self.targets.append(target)
            reply = self.respond(target)
            if isinstance(reply, bytes):
                writer.write(reply)
            else:
                for chunk in reply:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.3)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class FakeUDPTracker(asyncio.DatagramProtocol):
    """`respond(packet)` returns the datagrams to send back (none: stay silent)."""

    def __init__(self, respond: Callable[[bytes], list[bytes]]) -> None:
        self.respond = respond
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        assert self.transport is not None
        for answer in self.respond(data):
            self.transport.sendto(answer, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}/announce"

    async def __aenter__(self) -> FakeUDPTracker:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.transport is not None
        self.transport.close()


CONNECTION_ID = b"\x11" * 8


def udp_well_behaved(stats: dict[bytes, tuple[int, int, int]]) -> Callable[[bytes], list[bytes]]:
    """A correct BEP 15 tracker (seeders, leechers, completed per infohash)."""

    def respond(packet: bytes) -> list[bytes]:
        action, txid = struct.unpack_from(">II", packet, 8)
        if action == 0:
            return [struct.pack(">II", 0, txid) + CONNECTION_ID]
        if action == 2 and packet[:8] == CONNECTION_ID:
            out = struct.pack(">II", 2, txid)
            for i in range(16, len(packet), 20):
                s, leech, done = stats.get(packet[i : i + 20], (0, 0, 0))
                out += struct.pack(">III", s, done, leech)
            return [out]
        return [struct.pack(">II", 3, txid) + b"invalid connection id"]

    return respond


def parse_query(target: bytes) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target.decode("latin-1")).query))
