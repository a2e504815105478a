"""TCP_NODELAY on a process's peer connections, which libtorrent leaves with Nagle on.

Standard library only: the instance's seeder and the streaming reader both use it.
"""

from __future__ import annotations

import os
import socket


def set_nodelay(addresses: set[tuple[str, int]] | None = None) -> set[tuple[str, int]]:
    """Turn Nagle's algorithm off on this process's TCP connections to `addresses` (all
    connected TCP sockets when None); the addresses whose connections now have it off.

    libtorrent leaves TCP_NODELAY off on peer connections. A reader sends small messages
    (interested, requests) and waits for the answer, so with Nagle on, a message queued
    behind one the other side has not acknowledged yet waits for its delayed ACK (40 ms
    on Linux) on every read. libtorrent has no setting for it, so the sockets are found
    through /proc/self/fd; elsewhere this does nothing.
    """
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return set()
    done: set[tuple[str, int]] = set()
    for name in fds:
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=int(name))
        except (OSError, ValueError):
            continue
        try:
            if sock.type != socket.SOCK_STREAM or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            peer = sock.getpeername()
            if addresses is not None and (peer[0], peer[1]) not in addresses:
                continue
            if not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            done.add((peer[0], peer[1]))
        except OSError:
            continue
        finally:
            sock.detach()
    return done


__all__ = ["set_nodelay"]
