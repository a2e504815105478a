"""Outbound requests never reach private networks (unless a setting allows it).

A peer controls the URLs we fetch (actor ids, key ids, outbox pages), so a URL
could point at the instance's own network: a database admin port, a cloud
metadata service at 169.254.169.254. The guard refuses any host that is, or
resolves to, an address that is not globally routable, and it does so where the
connection is made — the address checked is the address connected to — so DNS
rebinding and redirects cannot slip past it. Tests on 127.0.0.1 set
`allow_private=True`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from holdfast.federation.errors import UnsafeAddressError

MAX_ADDRESSES = 16
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress | str) -> bool:
    """True for a globally routable unicast address; False for private, loopback,
    link-local, multicast, reserved, shared (CGNAT) and unspecified ones."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> tuple[str, str, int]:
    """Refuse URLs we never fetch: non-http(s), credentials in the URL, no host.

    Returns (scheme, host, port). The address check happens at connection time.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddressError(f"unreadable URL {url!r}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddressError(f"only http(s) URLs are fetched, not {url!r}")
    if not parts.hostname:
        raise UnsafeAddressError(f"URL without a host: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddressError("URLs with credentials are not fetched")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_addresses(host: str, addresses: Iterable[str], *, allow_private: bool) -> list[str]:
    found = list(dict.fromkeys(addresses))
    if not found:
        raise UnsafeAddressError(f"{host} has no address")
    if len(found) > MAX_ADDRESSES:
        found = found[:MAX_ADDRESSES]
    if not allow_private:
        refused = [address for address in found if not is_public_address(address)]
        if refused:
            # One private answer is enough to refuse: a name that mixes public and
            # private addresses is how rebinding attacks start.
            raise UnsafeAddressError(f"{host} resolves to a non-public address ({refused[0]})")
    return found


async def resolve_host(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """The addresses of `host` we may connect to; raises UnsafeAddressError otherwise."""
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal)
    except ValueError:
        pass
    else:
        return check_addresses(host, [literal], allow_private=allow_private)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return check_addresses(host, [str(info[4][0]) for info in infos], allow_private=allow_private)


async def check_url_resolves_public(url: str, *, allow_private: bool = False) -> list[str]:
    """Check a URL and resolve its host; raise UnsafeAddressError for refused ones."""
    _, host, port = check_url(url)
    return await resolve_host(host, port, allow_private=allow_private)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address itself."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_host(host, port, allow_private=self._allow_private)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeAddressError("unix sockets are never used for outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through the address guard."""

    def __init__(self, *, allow_private: bool = False, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # Replace the pool httpx built with one using the guarded backend; the
        # request/response mapping of httpx is kept as it is.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )


def guarded_client(
    *, allow_private: bool = False, timeout: float = 10.0, verify: bool = True
) -> httpx.AsyncClient:
    """An AsyncClient for federation traffic: guarded, no env proxies, no auto-redirects."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
