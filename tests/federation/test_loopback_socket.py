"""The listening socket the test and benchmark servers share with their child
processes: each connection it accepts must have TCP_NODELAY, as one made by
`loop.create_server` has, or every response written in two parts (head, then body)
waits ~40 ms for the client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket

from tests.federation.interop.children import bind_loopback


def test_connections_accepted_on_the_shared_socket_send_at_once() -> None:
    async def run() -> int:
        sock = bind_loopback()
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            host, port = sock.getsockname()
            _, writer = await asyncio.open_connection(host, port)
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()

    assert asyncio.run(run()) != 0
    with bind_loopback() as sock:
        assert sock.getsockname()[0] == "127.0.0.1"
