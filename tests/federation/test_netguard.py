"""The outbound address guard and the bounded fetch, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import pytest

from holdfast.federation.errors import FetchError, UnsafeAddressError
from holdfast.federation.fetch import fetch, fetch_json
from holdfast.federation.netguard import (
    check_url,
    check_url_resolves_public,
    guarded_client,
    is_public_address,
)

DOCUMENT = {"id": "https://a.example/actor", "type": "Service"}


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/activity+json",
        **headers: str,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", headers.pop("length", str(len(body))))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "headers": dict(self.headers.items())})
        body = json.dumps(DOCUMENT).encode()
        routes = {
            "/doc": lambda: self._send(200, body),
            "/redirect": lambda: self._send(302, b"", Location="/doc"),
            "/loop": lambda: self._send(302, b"", Location="/loop"),
            "/big": lambda: self._send(200, b"[" + b"1," * (1024 * 1024) + b"1]"),
            "/big-declared": lambda: self._send(200, b"{}", length=str(50 * 1024 * 1024)),
            "/html": lambda: self._send(200, b"<html></html>", "text/html"),
            "/missing": lambda: self._send(404, b"{}"),
            "/gzip": lambda: self._send(200, gzip.compress(body), Content_Encoding="gzip"),
            "/dupe": lambda: self._send(200, b'{"id": 1, "id": 2}'),
            "/drip": self._drip,
        }
        route = routes.get(self.path.split("?")[0])
        if route is None:
            self._send(404, b"{}")
        else:
            route()

    def _drip(self) -> None:
        """A valid document, one byte every 50 ms (5 s in all): each read is quick."""
        body = json.dumps({"id": "https://a.example/slow", "pad": "x" * 60}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/activity+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return  # the client gave up
            time.sleep(0.05)


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.8.8",
        "0.0.0.0",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://a.example/",
        "ftp://a.example/",
        "http:///nohost",
        "https://user:secret@a.example/",
        "http://a.example:99999/",
        "not a url",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(UnsafeAddressError):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]:8080/",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_private_hosts_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(UnsafeAddressError):
        asyncio.run(check_url_resolves_public(url))
    assert asyncio.run(check_url_resolves_public(url, allow_private=True))


def test_unresolvable_host_is_a_connect_error() -> None:
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(check_url_resolves_public("http://no-such-host.invalid/"))


async def _fetch(url: str, *, allow_private: bool = True, **kwargs: Any) -> Any:
    async with guarded_client(allow_private=allow_private, timeout=5) as client:
        return await fetch_json(client, url, **kwargs)


def test_guard_refuses_loopback_before_connecting(server: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = server
    with pytest.raises(UnsafeAddressError):
        asyncio.run(_fetch(base + "/doc", allow_private=False))
    localhost = base.replace("127.0.0.1", "localhost")
    with pytest.raises(UnsafeAddressError):
        asyncio.run(_fetch(localhost + "/doc", allow_private=False))
    assert seen == []


def test_fetch_when_private_addresses_are_allowed(server: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = server
    fetched, document = asyncio.run(_fetch(base + "/doc"))
    assert document == DOCUMENT
    assert fetched.body == json.dumps(DOCUMENT).encode()
    headers = {name.lower(): value for name, value in seen[0]["headers"].items()}
    assert headers["accept"].startswith("application/activity+json")
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"].startswith("holdfast/")


def test_fetch_follows_redirects_and_signs_each_hop(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = server
    signed: list[tuple[str, str]] = []

    def sign(method: str, url: str) -> dict[str, str]:
        signed.append((method, url))
        return {"Signature": f"test {url}"}

    fetched, document = asyncio.run(_fetch(base + "/redirect", sign=sign))
    assert document == DOCUMENT
    assert fetched.url == base + "/doc"
    assert signed == [("GET", base + "/redirect"), ("GET", base + "/doc")]
    assert [request["headers"]["Signature"] for request in seen] == [
        f"test {base}/redirect",
        f"test {base}/doc",
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/loop", "redirects"),
        ("/big", "more than"),
        ("/big-declared", "more than"),
        ("/html", "not JSON"),
        ("/missing", "404"),
        ("/gzip", "content-encoding"),
        ("/dupe", "duplicate key"),
    ],
)
def test_fetch_refusals(server: tuple[str, list[dict[str, Any]]], path: str, message: str) -> None:
    base, _ = server
    with pytest.raises(FetchError, match=message):
        asyncio.run(_fetch(base + path))


def test_a_peer_sending_slowly_cannot_hold_a_fetch_past_its_deadline(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = server
    with pytest.raises(FetchError, match="took more than 1 s"):
        asyncio.run(_fetch(base + "/drip", deadline=1.0))
    # Given the time, the same answer is a good document.
    _, document = asyncio.run(_fetch(base + "/drip", deadline=30.0))
    assert document["id"] == "https://a.example/slow"


def test_connection_refused_is_a_fetch_error() -> None:
    async def run() -> None:
        async with guarded_client(allow_private=True, timeout=2) as client:
            await fetch(client, "http://127.0.0.1:9/nothing-listens-here")

    with pytest.raises(FetchError):
        asyncio.run(run())
