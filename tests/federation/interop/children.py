"""A server in a child process: it binds 127.0.0.1 on a free port itself, prints one
JSON line describing what it serves, then serves until it is stopped.

Letting the child bind avoids the race of picking a free port in the parent.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0: any free port), inheritable by children.

    Made with `IPPROTO_TCP` named, as `loop.create_server` makes its own: asyncio sets
    TCP_NODELAY only on connections whose socket says so, and without it a response
    written in two parts (head, then body) waits ~40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def announce(info: dict[str, Any]) -> None:
    """Called by the child: report what it serves (one line on stdout).

    From then on the child also ends itself when its parent is gone (a test run or
    benchmark killed before it could stop its children), so no server outlives it.
    """
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    _exit_with_parent(os.getppid())


def _exit_with_parent(parent: int) -> None:
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ChildServer:
    """`python -m MODULE ARGS...` in `workdir`; `info` is the JSON line it announced."""

    def __init__(
        self,
        module: str,
        *args: str,
        workdir: Path,
        start_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.module = module
        self.args = args
        self.workdir = workdir
        self.start_timeout = start_timeout
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.module.rsplit('.', 1)[-1]}.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=self.workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.module} did not start:\n{self.log()}")
            if selector.select(timeout=min(remaining, 0.5)):
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    continue
                line += chunk
        selector.close()
        self.info = json.loads(line.decode("utf-8").splitlines()[0])
        return self.info

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> dict[str, Any]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
