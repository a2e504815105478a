"""Real holdfast instances on 127.0.0.1, each with its own data folder and database.

`InstanceThread` serves `create_app(settings)` with uvicorn in a thread of the test
process, so a test can also reach `instance` (catalogue, database) directly.
`InstanceProcess` serves it from a child process (benchmarks: its own interpreter,
and an event-loop lag monitor). Both bind the port first and then build the settings
with `public_url` pointing at it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.federation.interop.children import ChildServer, bind_loopback
from tests.federation.interop.tls import TlsFiles

# Parts the federation tests do not exercise, and that would bind fixed ports.
QUIET = {"tracker": False, "seeder": False}


class InstanceThread:
    """One instance served in a thread; use as a context manager."""

    def __init__(
        self,
        make_settings: Callable[..., Any],
        *,
        name: str,
        tls: TlsFiles | None = None,
        hostname: str = "127.0.0.1",
        **overrides: Any,
    ) -> None:
        self.make_settings = make_settings
        self.name = name
        self.tls = tls
        self.hostname = hostname
        self.overrides = overrides
        self.app: Any = None
        self.base_url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def instance(self) -> Any:
        return self.app.state.instance

    @property
    def actor_url(self) -> str:
        return f"{self.base_url}/actor"

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    def start(self) -> InstanceThread:
        import uvicorn

        from holdfast.app import create_app

        sock = bind_loopback()
        port = sock.getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://{self.hostname}:{port}"
        values = {
            **QUIET,
            "run_jobs": True,
            "allow_private_addresses": True,
            "instance_name": self.name,
            "instance_title": f"Archive {self.name}",
            **self.overrides,
            "host": "127.0.0.1",
            "port": port,
            "public_url": self.base_url,
        }
        self.app = create_app(self.make_settings(**values))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            proxy_headers=False,
            ssl_certfile=str(self.tls.certfile) if self.tls else None,
            ssl_keyfile=str(self.tls.keyfile) if self.tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"instance {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> InstanceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InstanceProcess:
    """One instance served by a child process; `settings` are plain JSON values."""

    def __init__(self, workdir: Path, *, name: str, **settings: Any) -> None:
        self.workdir = workdir
        self.name = name
        values = {
            **QUIET,
            "run_jobs": True,
            "job_process": False,  # jobs in threads of the server; benchmarks choose
            "allow_private_addresses": True,
            "instance_name": name,
            "instance_title": f"Archive {name}",
            "data_dir": str(workdir / "data"),
            "config_file": str(workdir / "no-config.toml"),
            **settings,
        }
        self.settings_values = values
        self.child = ChildServer(
            "tests.federation.interop.instance_server",
            json.dumps(values, default=str),
            workdir=workdir,
        )
        self.base_url = ""

    @property
    def actor_url(self) -> str:
        return f"{self.base_url}/actor"

    @property
    def looplag_path(self) -> Path:
        return self.workdir / "looplag.json"

    def start(self) -> InstanceProcess:
        info = self.child.start()
        self.base_url = info["base_url"]
        wait_for_http(f"{self.base_url}/.well-known/nodeinfo")
        return self

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> InstanceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_http(url: str, timeout: float = 60.0) -> httpx.Response:
    """GET `url` until it answers below 500 (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5, verify=False)
            if response.status_code < 500:
                return response
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer: {last}")


def wait_until(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Call `check` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(interval)
