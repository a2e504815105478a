"""Announces per second: the embedded tracker (UDP and HTTP) against opentracker.

    python benchmarks/tracker.py [--seconds 4] [--count 200000] [--swarms 1000]

Starts, on 127.0.0.1, a fresh opentracker (whitelisting the benchmark's infohashes)
and the embedded tracker in a separate process running the way `holdfast serve` would
run it (UDP on a thread of its own; the dedicated HTTP listener and the ASGI app in
front of a FastAPI app under uvicorn, on uvloop), plus the event-loop UDP listener
for comparison. One load-generator process then sends announces to
each in turn, bounded both by count and by time, for a mix of swarms and peers
(one in three a seeder), and counts the answers.

HTTP load opens one connection per announce, as BitTorrent clients do (opentracker
closes every connection after answering); the keep-alive rows show what the
embedded tracker does when a client reuses its connection.

Both trackers and the load generator share two cores, so a tracker that needs less
CPU than the generator can feed it is limited by the generator: the table also
gives the tracker's own CPU time per announce (from /proc), which is not.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import multiprocessing
import os
import random
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes

PROTOCOL_ID = 0x41727101980


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    answered: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


# --- load generators


def udp_connection_id(sock: socket.socket, addr: tuple[str, int]) -> bytes:
    for _ in range(5):
        sock.sendto(struct.pack(">QII", PROTOCOL_ID, 0, 7), addr)
        sock.settimeout(1.0)
        try:
            data = sock.recv(2048)
        except TimeoutError:
            continue
        action, txid = struct.unpack_from(">II", data)
        if action == 0 and txid == 7:
            return data[8:16]
    raise RuntimeError("no UDP connect reply")


def udp_load(
    addr: tuple[str, int],
    announces: list[tuple[bytes, int, int]],
    *,
    count: int,
    seconds: float,
    window: int = 64,
) -> Run:
    """Keeps `window` announces in flight; lost datagrams are replaced after 0.2 s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    cid = udp_connection_id(sock, addr)
    packets = [
        cid
        + struct.pack(
            ">II20s20sQQQIIIiH",
            1,
            0,
            infohash,
            b"-HF0001-" + os.urandom(12),
            0,
            left,
            0,
            2,
            0,
            0,
            50,
            port,
        )
        for infohash, port, left in announces
    ]
    sock.settimeout(0.2)
    answered = errors = sent = 0
    n = len(packets)
    start = time.perf_counter()
    deadline = start + seconds
    for _ in range(window):
        packet = packets[sent % n]
        sock.sendto(packet[:12] + struct.pack(">I", sent & 0xFFFFFFFF) + packet[16:], addr)
        sent += 1
    buffer = bytearray(4096)
    while answered + errors < count:
        try:
            size = sock.recv_into(buffer)
        except TimeoutError:
            size = -1
        if size >= 8 and buffer[3] == 1:
            answered += 1
        else:
            errors += 1
        if answered % 1024 == 0 and time.perf_counter() > deadline:
            break
        if sent < count:
            packet = packets[sent % n]
            sock.sendto(packet[:12] + struct.pack(">I", sent & 0xFFFFFFFF) + packet[16:], addr)
            sent += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return Run(answered, errors, elapsed)


def http_requests(announces: list[tuple[bytes, int, int]], keepalive: bool) -> list[bytes]:
    connection = b"" if keepalive else b"Connection: close\r\n"
    return [
        b"GET /announce?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d"
        b"&compact=1&numwant=50&event=started HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
        % (
            quote_from_bytes(infohash, safe="").encode(),
            quote_from_bytes(b"-HF0001-" + os.urandom(12), safe="").encode(),
            port,
            left,
            connection,
        )
        for infohash, port, left in announces
    ]


def http_load(
    addr: tuple[str, int],
    requests: list[bytes],
    *,
    count: int,
    seconds: float,
    keepalive: bool,
    concurrency: int = 32,
) -> Run:
    """`concurrency` connections in flight on one epoll loop; a new connection per
    announce unless `keepalive`."""
    poller = select.epoll()
    conns: dict[int, list] = {}  # fd -> [socket, pending output, input buffer]
    answered = errors = started = 0
    n = len(requests)
    start = time.perf_counter()
    deadline = start + seconds

    def open_one() -> None:
        nonlocal started
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(addr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, os.strerror(code))
        conns[sock.fileno()] = [sock, requests[started % n], b""]
        poller.register(sock.fileno(), select.EPOLLOUT)
        started += 1

    def close_one(fd: int) -> None:
        poller.unregister(fd)
        conns.pop(fd)[0].close()

    def complete(buffer: bytes) -> int:
        """Bytes of a full response at the start of buffer, or 0."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return 0
        head = buffer[:end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            return 0
        length = int(head[at + 15 :].split(b"\r\n", 1)[0])
        total = end + 4 + length
        return total if len(buffer) >= total else 0

    for _ in range(concurrency):
        open_one()
    while conns:
        for fd, mask in poller.poll(1.0):
            state = conns.get(fd)
            if state is None:
                continue
            sock = state[0]
            if mask & select.EPOLLOUT:
                try:
                    sent = sock.send(state[1])
                except OSError:
                    errors += 1
                    close_one(fd)
                    if started < count and time.perf_counter() < deadline:
                        open_one()
                    continue
                state[1] = state[1][sent:]
                if not state[1]:
                    poller.modify(fd, select.EPOLLIN)
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            state[2] += data
            size = complete(state[2])
            if size:
                if state[2].startswith(b"HTTP/1.1 200") and b"failure reason" not in state[2]:
                    answered += 1
                else:
                    errors += 1
                more = started < count and (answered & 255 or time.perf_counter() < deadline)
                if keepalive and more:
                    state[1] = requests[started % n]
                    state[2] = b""
                    started += 1
                    poller.modify(fd, select.EPOLLOUT)
                    continue
                close_one(fd)
                if more:
                    open_one()
            elif not data:
                errors += 1
                close_one(fd)
                if started < count and time.perf_counter() < deadline:
                    open_one()
    elapsed = time.perf_counter() - start
    poller.close()
    return Run(answered, errors, elapsed)


# --- the trackers


@contextlib.contextmanager
def opentracker(infohashes: list[bytes]) -> Iterator[tuple[int, int]]:
    exe = shutil.which("opentracker")
    if exe is None:
        raise SystemExit("opentracker is not installed (Debian package opentracker)")
    with tempfile.TemporaryDirectory() as folder:
        # opentracker reads its whitelist after dropping to user nobody.
        os.chmod(folder, 0o755)
        Path(folder, "whitelist.txt").write_text("".join(h.hex() + "\n" for h in infohashes))
        Path(folder, "opentracker.conf").write_text("access.whitelist /whitelist.txt\n")
        port = free_port()
        proc = subprocess.Popen(
            [
                *(exe, "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-A", "127.0.0.1"),
                *("-d", folder, "-u", "nobody", "-f", str(Path(folder, "opentracker.conf"))),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_tcp(port)
            yield proc.pid, port
        finally:
            proc.terminate()
            proc.wait(5)


def wait_for_tcp(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def serve_embedded(
    infohashes: list[bytes], udp: int, udp_py: int, udp_loop: int, http: int, asgi: int
) -> None:
    """The embedded tracker, as the instance runs it (in its own process).

    `make_tracker` gives the peer store in C when holdfast.swarm._udpfast is built:
    the UDP thread on `udp` is then the C listener, and the HTTP front ends use the
    same store. A second, pure-Python Tracker serves the Python UDP thread (`udp_py`)
    and the event-loop listener, for comparison.
    """
    import uvicorn
    import uvloop
    from fastapi import FastAPI

    from holdfast.swarm.fastpath import make_tracker
    from holdfast.swarm.http_tracker import HTTPTrackerApp, start_http_tracker
    from holdfast.swarm.tracker import AllowList, Tracker
    from holdfast.swarm.udp_tracker import UDPTrackerThread, start_udp_tracker

    async def main() -> None:
        tracker = make_tracker(is_allowed=AllowList(infohashes))
        python_tracker = Tracker(is_allowed=AllowList(infohashes))
        # As the instance runs it: a thread of its own (the C listener when built).
        UDPTrackerThread(tracker, "127.0.0.1", udp, secret=os.urandom(32)).start()
        # The Python thread and the event-loop listener, for comparison.
        UDPTrackerThread(python_tracker, "127.0.0.1", udp_py, secret=os.urandom(32)).start()
        await start_udp_tracker(python_tracker, "127.0.0.1", udp_loop, secret=os.urandom(32))
        await start_http_tracker(tracker, "127.0.0.1", http)
        web = FastAPI()

        @web.get("/")
        async def home() -> dict[str, str]:
            return {"hello": "world"}

        app = HTTPTrackerApp(web, tracker=tracker)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=asgi, log_level="warning", access_log=False, loop="none"
        )
        await uvicorn.Server(config).serve()

    uvloop.run(main())


@contextlib.contextmanager
def embedded(infohashes: list[bytes]) -> Iterator[tuple[int, int, int, int, int, int]]:
    ports = [free_port() for _ in range(5)]
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=serve_embedded, args=(infohashes, *ports), daemon=True)
    proc.start()
    try:
        wait_for_tcp(ports[3])
        wait_for_tcp(ports[4])
        assert proc.pid is not None
        udp, udp_py, udp_loop, http, asgi = ports
        yield proc.pid, udp, udp_py, udp_loop, http, asgi
    finally:
        proc.terminate()
        proc.join(5)


def measure(pid: int, load: Callable[[], Run]) -> tuple[Run, float]:
    before = cpu_seconds(pid)
    run = load()
    used = cpu_seconds(pid) - before
    return run, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time bound per row")
    parser.add_argument("--count", type=int, default=200_000, help="announce bound per row")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--swarms", type=int, default=1000, help="distinct infohashes")
    parser.add_argument("--peers", type=int, default=20, help="distinct peers per swarm")
    args = parser.parse_args()

    rng = random.Random(5)
    infohashes = [rng.randbytes(20) for _ in range(args.swarms)]
    announces = [
        (infohashes[i % args.swarms], 1024 + i // args.swarms, 0 if i % 3 == 0 else 1000)
        for i in range(args.swarms * args.peers)
    ]
    rng.shuffle(announces)
    bound = {"count": args.count, "seconds": args.seconds}
    close = http_requests(announces, keepalive=False)
    keep = http_requests(announces, keepalive=True)
    results: dict[tuple[str, str], list[tuple[Run, float]]] = {}
    from holdfast.swarm import fastpath

    c = fastpath.AVAILABLE and not os.environ.get("HOLDFAST_TRACKER_PURE_PYTHON")
    kind = "C listener" if c else "Python thread"

    with (
        opentracker(infohashes) as (ot_pid, ot),
        embedded(infohashes) as (pid, udp, udp_py, udp_loop, http, asgi),
    ):
        # Fill the swarms once, so every row answers from full swarms.
        for port in (ot, udp, udp_py):
            udp_load(("127.0.0.1", port), announces, count=len(announces), seconds=10)
        rows: list[tuple[str, str, int, Callable[[], Run]]] = [
            ("opentracker", "UDP", ot_pid, lambda: udp_load(("127.0.0.1", ot), announces, **bound)),
            (
                "holdfast",
                f"UDP ({kind}, as the instance runs it)",
                pid,
                lambda: udp_load(("127.0.0.1", udp), announces, **bound),
            ),
            (
                "holdfast",
                "UDP, Python thread",
                pid,
                lambda: udp_load(("127.0.0.1", udp_py), announces, **bound),
            ),
            (
                "holdfast",
                "UDP, event-loop listener",
                pid,
                lambda: udp_load(("127.0.0.1", udp_loop), announces, **bound),
            ),
            (
                "opentracker",
                "HTTP, connection per announce",
                ot_pid,
                lambda: http_load(("127.0.0.1", ot), close, keepalive=False, **bound),
            ),
        ]
        for label, port in (("dedicated listener", http), ("ASGI app under uvicorn", asgi)):
            rows.append(
                (
                    "holdfast",
                    f"HTTP {label}, connection per announce",
                    pid,
                    lambda port=port: http_load(
                        ("127.0.0.1", port), close, keepalive=False, **bound
                    ),
                )
            )
            rows.append(
                (
                    "holdfast",
                    f"HTTP {label}, keep-alive",
                    pid,
                    lambda port=port: http_load(("127.0.0.1", port), keep, keepalive=True, **bound),
                )
            )
        # Rows alternate within each round, so a busy moment on the machine does
        # not land on one tracker only.
        for _ in range(args.rounds):
            for name, transport, process, load in rows:
                results.setdefault((name, transport), []).append(measure(process, load))

    print(
        f"{args.swarms} swarms x {args.peers} peers; each row: median of {args.rounds} runs "
        f"bounded by {args.count} announces / {args.seconds:g} s; Python {sys.version.split()[0]}\n"
    )
    print("| tracker | transport | announces/s | errors | tracker CPU µs/announce |")
    print("|---|---|---:|---:|---:|")
    for (name, transport), runs in results.items():
        rate = statistics.median(run.rate for run, _ in runs)
        errors = sum(run.errors for run, _ in runs)
        per = statistics.median(
            cpu / run.answered * 1e6 if run.answered else float("nan") for run, cpu in runs
        )
        print(f"| {name} | {transport} | {rate:,.0f} | {errors} | {per:.1f} |")


if __name__ == "__main__":
    main()
