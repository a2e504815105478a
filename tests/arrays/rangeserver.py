"""A static file server with HTTP Range support (RFC 9110, single ranges), for web seed
tests and benchmarks. `python -m http.server` has no Range support.

It binds 127.0.0.1 on a free port, serves one folder, and counts requests and body bytes.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class ServerStats:
    requests: int = 0
    bytes_sent: int = 0
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.bytes_sent = 0
            self.paths.clear()


class RangeServer:
    def __init__(self, root: Path, *, honour_range: bool = True) -> None:
        self.root = root.resolve()
        self.honour_range = honour_range
        self.stats = ServerStats()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # The head and the body are two writes: without TCP_NODELAY a body
                # under one segment waits ~40 ms for the reader's delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                target = server.resolve(urlsplit(self.path).path)
                if target is None or not target.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = target.stat().st_size
                start, end, status = 0, size, 200
                header = self.headers.get("Range")
                if header and server.honour_range:
                    match = _RANGE.match(header.strip())
                    if match is None or (not match[1] and not match[2]):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if match[1]:
                        start = int(match[1])
                        end = min(int(match[2]) + 1, size) if match[2] else size
                    else:
                        start = max(size - int(match[2]), 0)
                    if start >= size or end <= start:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes" if server.honour_range else "none")
                self.send_header("Content-Length", str(end - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.end_headers()
                with server.stats.lock:
                    server.stats.requests += 1
                    server.stats.paths.append(urlsplit(self.path).path)
                if not body:
                    return
                with target.open("rb") as handle:
                    handle.seek(start)
                    remaining = end - start
                    while remaining:
                        chunk = handle.read(min(remaining, 1 << 16))
                        if not chunk:
                            break
                        # Counted before the write: a reader may be done with the
                        # bytes before this thread runs again.
                        with server.stats.lock:
                            server.stats.bytes_sent += len(chunk)
                        self.wfile.write(chunk)
                        remaining -= len(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def resolve(self, url_path: str) -> Path | None:
        candidate = (self.root / unquote(url_path).lstrip("/")).resolve()
        return candidate if candidate.is_relative_to(self.root) else None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
