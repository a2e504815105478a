"""Server-side connections go only to public addresses (unless allowed for testing)."""

from __future__ import annotations

import asyncio
import ipaddress

import httpcore
import pytest

from holdfast.swarm.addresses import (
    AddressRefused,
    ResolutionFailed,
    VettedNetworkBackend,
    is_public,
    resolve,
    vetted_pool,
)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("192.0.2.1", False),  # documentation
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_resolve_refuses_private_results_unless_allowed() -> None:
    async def go() -> None:
        with pytest.raises(AddressRefused, match="not a public address"):
            await resolve("localhost", 80, allow_private=False)
        with pytest.raises(AddressRefused):
            await resolve("127.0.0.1", 80, allow_private=False)
        with pytest.raises(AddressRefused):
            await resolve("[::1]", 80, allow_private=False)
        assert "127.0.0.1" in await resolve("localhost", 80, allow_private=True)
        assert await resolve("8.8.8.8", 53, allow_private=False) == ["8.8.8.8"]
        with pytest.raises(ResolutionFailed):
            await resolve("no-such-host.invalid", 80, allow_private=False)
        with pytest.raises(ResolutionFailed, match="invalid host"):
            await resolve("a" * 300, 80, allow_private=False)

    asyncio.run(go())


def test_the_vetted_pool_never_connects_to_loopback() -> None:
    async def go() -> None:
        pool = vetted_pool(allow_private=False)
        async with pool:
            with pytest.raises(AddressRefused):
                await pool.request("GET", "http://127.0.0.1:9/")
            with pytest.raises(AddressRefused):
                await pool.request("GET", "http://localhost:9/")
        backend = VettedNetworkBackend(allow_private=False)
        with pytest.raises(AddressRefused):
            await backend.connect_unix_socket("/run/docker.sock")
        allowed = vetted_pool(allow_private=True)
        async with allowed:
            # Allowed to try: nothing listens on port 9, so the connection is refused.
            with pytest.raises(httpcore.ConnectError):
                await allowed.request("GET", "http://127.0.0.1:9/")

    asyncio.run(go())
