"""HTTP announce and scrape: the ASGI app and the dedicated listener."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest

from holdfast.swarm import http_tracker
from holdfast.swarm.http_tracker import HTTPTrackerApp, TrackerHTTPHandler, start_http_tracker
from holdfast.swarm.tracker import AllowList, SwarmStats, Tracker, allow_all, pack_ip
from holdfast.torrents import bencode

PEER_ID = b"-HF0001-" + b"a" * 12


def q(value: bytes) -> str:
    return quote_from_bytes(value, safe="")


def announce_query(infohash: bytes, port: int, left: int = 0, **extra: str) -> bytes:
    params = {
        "info_hash": q(infohash),
        "peer_id": q(PEER_ID),
        "port": str(port),
        "uploaded": "0",
        "downloaded": "0",
        "left": str(left),
        "compact": "1",
        **extra,
    }
    return "&".join(f"{k}={v}" for k, v in params.items()).encode()


async def call(
    app: Any,
    path: str,
    query: bytes,
    *,
    method: str = "GET",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the ASGI app, raw query string and all."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_announce_answers_compact_peers_and_counts() -> None:
    infohash = os.urandom(20)
    app = HTTPTrackerApp(tracker=Tracker(is_allowed=AllowList([infohash])))
    status, headers, body = run(call(app, "/announce", announce_query(infohash, 6001)))
    assert status == 200 and headers[b"content-type"] == b"text/plain"
    first = bencode.decode(body)
    assert first[b"complete"] == 1 and first[b"incomplete"] == 0 and first[b"peers"] == b""
    assert first[b"interval"] == 1800 and first[b"min interval"] == 300
    _, _, body = run(
        call(app, "/announce", announce_query(infohash, 6002, left=5, event="started"))
    )
    second = bencode.decode(body)
    assert (second[b"complete"], second[b"incomplete"]) == (1, 1)
    assert second[b"peers"] == pack_ip("127.0.0.1") + (6001).to_bytes(2, "big")
    assert b"peers6" not in second


def test_ipv6_clients_are_listed_in_peers6() -> None:
    infohash = os.urandom(20)
    app = HTTPTrackerApp(tracker=Tracker(is_allowed=allow_all))
    run(call(app, "/announce", announce_query(infohash, 6001), client=("2001:db8::5", 1)))
    _, _, body = run(call(app, "/announce", announce_query(infohash, 6002, left=3)))
    answer = bencode.decode(body)
    assert answer[b"peers6"] == pack_ip("2001:db8::5") + (6001).to_bytes(2, "big")
    assert answer[b"peers"] == b""


def test_scrape_answers_many_infohashes_and_leaves_out_unknown_ones() -> None:
    a, b, unknown = os.urandom(20), os.urandom(20), os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([a, b]))
    app = HTTPTrackerApp(tracker=tracker)
    run(call(app, "/announce", announce_query(a, 6001)))
    run(call(app, "/announce", announce_query(a, 6002, left=9)))
    query = f"info_hash={q(a)}&info_hash={q(b)}&info_hash={q(unknown)}".encode()
    _, _, body = run(call(app, "/scrape", query))
    files = bencode.decode(body)[b"files"]
    assert files == {
        a: {b"complete": 1, b"downloaded": 0, b"incomplete": 1},
        b: {b"complete": 0, b"downloaded": 0, b"incomplete": 0},
    }


def failure(body: bytes) -> str:
    decoded = bencode.decode(body)
    assert list(decoded) == [b"failure reason"]
    return str(decoded[b"failure reason"].decode())


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (b"", "missing info_hash"),
        (b"info_hash=" + b"%41" * 19 + b"&peer_id=" + b"a" * 20 + b"&port=1&left=0", "20 bytes"),
        (b"info_hash=" + b"%zz" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=1&left=0", "invalid"),
        (b"info_hash=" + b"%41" * 20 + b"&port=1&left=0", "missing peer_id"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&left=0", "missing port"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=1", "missing left"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=x&left=0", "port"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=1&left=-1", "left"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=0&left=0", "port"),
        (b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=99999&left=0", "port"),
        (
            b"info_hash=" + b"%41" * 20 + b"&peer_id=" + b"a" * 20 + b"&port=1&left=0&event=x",
            "invalid event",
        ),
        (
            b"info_hash=" + b"%41" * 20 + b"&info_hash=" + b"%42" * 20 + b"&peer_id=" + b"a" * 20,
            "one info_hash",
        ),
        (b"info_hash=" + b"%41" * 2000, "too long"),
    ],
)
def test_malformed_announces_get_a_failure_reason_and_change_nothing(
    query: bytes, reason: str
) -> None:
    tracker = Tracker(is_allowed=allow_all)
    status, _, body = run(call(HTTPTrackerApp(tracker=tracker), "/announce", query))
    assert status == 200
    assert reason in failure(body)
    assert tracker.swarm_count == 0


def test_unknown_infohash_in_whitelist_mode_is_refused() -> None:
    tracker = Tracker(is_allowed=AllowList([os.urandom(20)]))
    _, _, body = run(
        call(HTTPTrackerApp(tracker=tracker), "/announce", announce_query(os.urandom(20), 1))
    )
    assert failure(body) == "unregistered torrent"
    assert tracker.swarm_count == 0


def test_binary_parameters_decode_like_percent_decoding() -> None:
    """Every byte value, escaped or literal, in upper or lower case hex."""
    infohash = bytes(range(236, 256))
    raw = bytes(range(256))
    tracker = Tracker(is_allowed=allow_all)
    handler = TrackerHTTPHandler(tracker)
    for chunk in (raw[i : i + 20] for i in range(0, 240, 20)):
        for encoded in (q(chunk), q(chunk).lower(), quote_from_bytes(chunk, safe="~!$'()*,;:@")):
            query = f"info_hash={encoded}&peer_id={q(PEER_ID)}&port=7&left=0".encode()
            assert b"failure" not in handler.respond("/announce", query, pack_ip("127.0.0.1"))
            assert tracker.stats(chunk) == SwarmStats(1, 0, 0)
    assert tracker.stats(infohash) == SwarmStats(0, 0, 0)


def test_scrape_refuses_full_scrape_and_too_many_infohashes() -> None:
    app = HTTPTrackerApp(tracker=Tracker(is_allowed=allow_all), max_scrape=3)
    assert "full scrape" in failure(run(call(app, "/scrape", b""))[2])
    many = "&".join(f"info_hash={q(os.urandom(20))}" for _ in range(4)).encode()
    assert "at most 3" in failure(run(call(app, "/scrape", many))[2])
    assert "20 bytes" in failure(run(call(app, "/scrape", b"info_hash=abc"))[2])


def test_other_methods_and_paths() -> None:
    app = HTTPTrackerApp(tracker=Tracker(is_allowed=allow_all))
    status, headers, body = run(call(app, "/announce", b"", method="POST"))
    assert status == 405 and headers[b"allow"] == b"GET, HEAD" and failure(body)
    assert run(call(app, "/elsewhere", b""))[0] == 404
    status, _, body = run(call(app, "/announce", announce_query(os.urandom(20), 1), client=None))
    assert "address" in failure(body)


def web_app(reached: list[str]) -> Any:
    from fastapi import FastAPI

    web = FastAPI()

    @web.get("/{path:path}")
    async def anything(path: str) -> dict[str, str]:
        reached.append(path)
        return {"page": path}

    return web


def page_and_announce(app: Any, infohash: bytes) -> tuple[httpx.Response, httpx.Response]:
    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            page = await client.get("/datasets")
            tracker = await client.get("/announce?" + announce_query(infohash, 6881).decode())
            return page, tracker

    return run(go())


@pytest.mark.parametrize("how", ["wrapping", "middleware"])
def test_the_web_app_gets_everything_else(how: str) -> None:
    """Mounted ahead of the web framework: tracker paths never reach it."""
    reached: list[str] = []
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash]))
    web = web_app(reached)
    if how == "wrapping":
        app = HTTPTrackerApp(web, tracker=tracker)
    else:
        web.add_middleware(HTTPTrackerApp, tracker=tracker)
        app = web
    page, announce = page_and_announce(app, infohash)
    assert page.json() == {"page": "datasets"} and reached == ["datasets"]
    assert bencode.decode(announce.content)[b"complete"] == 1


# --- the dedicated listener


async def exchange(port: int, payload: bytes, *, until_closed: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if until_closed:
        data = await asyncio.wait_for(reader.read(), 5)
    else:
        data = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return data


def responses(data: bytes) -> list[tuple[bytes, bytes]]:
    """(status line, body) of each response in a byte stream."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(x.split(b":")[1]) for x in lines if x.lower().startswith(b"content-length")
        )
        out.append((lines[0], rest[:length]))
        data = rest[length:]
    return out


def test_listener_keeps_connections_alive_and_answers_pipelined_requests() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash]))

    async def go() -> bytes:
        server = await start_http_tracker(tracker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            requests = b"".join(
                b"GET /announce?%s HTTP/1.1\r\nHost: x\r\n\r\n"
                % announce_query(infohash, port, left)
                for port, left in ((6001, 0), (6002, 5))
            )
            requests += b"GET /scrape?info_hash=%s HTTP/1.1\r\nConnection: close\r\n\r\n" % (
                q(infohash).encode()
            )
            return await exchange(port, requests)
        finally:
            server.close()
            await server.wait_closed()

    answers = responses(run(go()))
    assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert bencode.decode(answers[1][1])[b"peers"] == pack_ip("127.0.0.1") + b"\x17\x71"
    assert bencode.decode(answers[2][1])[b"files"][infohash] == {
        b"complete": 1,
        b"downloaded": 0,
        b"incomplete": 1,
    }


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /announce HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", b"400"),
        (b"GET /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
        (b"POST /announce HTTP/1.1\r\n\r\n", b"405"),
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /elsewhere HTTP/1.0\r\n\r\n", b"404"),
        (b"GET /announce?" + b"a" * 9000, b"431"),
    ],
)
def test_listener_refuses_what_is_not_a_tracker_request(
    request_bytes: bytes, status: bytes
) -> None:
    tracker = Tracker(is_allowed=allow_all)

    async def go() -> bytes:
        server = await start_http_tracker(tracker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await exchange(port, request_bytes)
        finally:
            server.close()
            await server.wait_closed()

    data = run(go())
    assert data.split(b" ")[1] == status
    assert b"Connection: close" in data
    assert tracker.swarm_count == 0


def test_listener_answers_a_flood_of_pipelined_requests_read_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading pauses while answers pile up unread, and resumes: none is lost."""
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash]))
    count = 3000
    pauses: list[int] = []
    pause = http_tracker._TrackerConnection.pause_writing

    def counting_pause(self: Any) -> None:
        pauses.append(1)
        pause(self)

    monkeypatch.setattr(http_tracker._TrackerConnection, "pause_writing", counting_pause)

    async def go() -> bytes:
        server = await start_http_tracker(tracker, "127.0.0.1", 0)
        # Small socket buffers on both ends, so unread answers back up into ours.
        server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
            request = b"GET /scrape?info_hash=%s HTTP/1.1\r\n\r\n" % q(infohash).encode()
            writer.write(request * count + b"GET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.5)  # answers pile up unread
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return data
        finally:
            server.close()
            await server.wait_closed()

    answers = responses(run(go()))
    assert pauses
    assert len(answers) == count + 1
    assert all(status == b"HTTP/1.1 200 OK" for status, _ in answers)
    assert bencode.decode(answers[0][1])[b"files"][infohash][b"complete"] == 0
    assert "full scrape" in failure(answers[-1][1])


def test_listener_closes_idle_connections_and_caps_their_number() -> None:
    tracker = Tracker(is_allowed=allow_all)

    async def go() -> tuple[bytes, bytes]:
        server = await start_http_tracker(
            tracker, "127.0.0.1", 0, idle_timeout=0.3, max_connections=1
        )
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.05)
            # A second connection over the cap is dropped at once.
            reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
            dropped = await asyncio.wait_for(reader2.read(), 2)
            writer2.close()
            idle = await asyncio.wait_for(reader.read(), 2)  # closed after 0.3 s
            writer.close()
            return dropped, idle
        finally:
            server.close()
            await server.wait_closed()

    dropped, idle = run(go())
    assert dropped == b"" and idle == b""


def test_listener_on_a_real_socket_with_httpx() -> None:
    infohash = os.urandom(20)
    tracker = Tracker(is_allowed=AllowList([infohash]))

    async def go() -> httpx.Response:
        server = await start_http_tracker(tracker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient() as client:
                return await client.get(
                    f"http://127.0.0.1:{port}/announce?" + announce_query(infohash, 1).decode()
                )
        finally:
            server.close()
            await server.wait_closed()

    response = run(go())
    assert response.status_code == 200
    assert bencode.decode(response.content)[b"complete"] == 1
    assert socket.inet_ntoa(pack_ip("127.0.0.1")) == "127.0.0.1"
