"""Server-side connections only to public addresses.

A tracker URL (or a webseed URL) comes from a torrent anyone can upload, so the
instance must not be made to connect to its own loopback, its private network or
a cloud metadata address. Names are resolved first and every resolved address is
checked; the connection then goes to the checked address, never to the name
again, so a second DNS answer cannot swap in a private address (DNS rebinding).

`allow_private=True` (the `allow_private_addresses` setting, for local testing)
turns the check off.

    AddressError
    ├── ResolutionFailed    the name did not resolve (or resolution timed out)
    └── AddressRefused      it resolved only to addresses we will not connect to
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable

import httpcore

from holdfast.federation.netguard import is_public_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResolutionFailed(AddressError):
    pass


class AddressRefused(AddressError):
    pass


def is_public(address: IPAddress) -> bool:
    """Whether `address` is a globally routable unicast address (one rule, shared with
    federation's outbound fetches)."""
    return is_public_address(address)


async def resolve(
    host: str,
    port: int,
    *,
    allow_private: bool,
    kind: socket.SocketKind = socket.SOCK_STREAM,
    timeout: float = 10.0,
) -> list[str]:
    """The addresses of `host` we may connect to, in resolver order (IP literals
    are not looked up). Raises ResolutionFailed or AddressRefused."""
    host = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: Iterable[str] = [str(literal)]
    else:
        if not host or len(host) > 253:
            raise ResolutionFailed(f"invalid host name {host[:60]!r}")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=kind)
        except TimeoutError:
            raise ResolutionFailed(f"resolving {host} timed out") from None
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolutionFailed(f"cannot resolve {host}: {exc}") from None
        candidates = dict.fromkeys(str(info[4][0]) for info in infos)
    allowed = []
    refused = []
    for candidate in candidates:
        address = ipaddress.ip_address(candidate.partition("%")[0])
        if allow_private or is_public(address):
            allowed.append(candidate)
        else:
            refused.append(candidate)
    if not allowed:
        if literal is not None:
            raise AddressRefused(f"{host} is not a public address")
        shown = ", ".join(refused) or "nothing"
        raise AddressRefused(f"{host} resolves to {shown}: not a public address")
    return allowed


class VettedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves and checks every host itself.

    TLS still verifies the certificate against the original host name: httpcore
    passes the URL's host to `start_tls`, whatever address we connected to.
    """

    def __init__(self, *, allow_private: bool, resolve_timeout: float = 10.0) -> None:
        self.allow_private = allow_private
        self.resolve_timeout = resolve_timeout
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(
            host,
            port,
            allow_private=self.allow_private,
            timeout=timeout if timeout is not None else self.resolve_timeout,
        )
        failure: Exception | None = None
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
                failure = exc
        if failure is None:  # pragma: no cover - resolve() never returns an empty list
            raise AddressRefused(f"no address to connect to for {host}")
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not reachable from here")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def vetted_pool(
    *,
    allow_private: bool,
    max_connections: int = 32,
    ssl_context: ssl.SSLContext | None = None,
) -> httpcore.AsyncConnectionPool:
    """A connection pool whose every connection goes through `VettedNetworkBackend`,
    with no proxies from the environment (they would bypass the check)."""
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or ssl.create_default_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
        network_backend=VettedNetworkBackend(allow_private=allow_private),
    )
