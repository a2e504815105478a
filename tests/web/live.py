"""A real holdfast server on 127.0.0.1 (uvicorn in a thread) and a headless Chromium.

Browser tests drive Debian's chromium through Playwright; nothing is downloaded.
The axe-core script comes from npm: `npm ci --prefix tests/web` puts it in
tests/web/node_modules.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[1] / "test-artifacts" / "web"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(make_settings: Any, **overrides: Any) -> Iterator[tuple[str, Any]]:
    """A server for a new instance; yields (base URL, app)."""
    from holdfast.app import create_app

    port = free_port()
    app = create_app(make_settings(host="127.0.0.1", port=port, **overrides))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def axe_source() -> str:
    if not AXE.is_file():
        raise RuntimeError(f"{AXE} is missing: run `npm ci --prefix tests/web`")
    return AXE.read_text(encoding="utf-8")


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
  }));
}"""


def check_accessibility(page: Any, name: str) -> list[dict[str, Any]]:
    """Run axe-core on the page; return its serious and critical violations.

    All violations are written to test-artifacts/web/axe-NAME.json for reading.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the page's CSP does not apply.
        page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=2))
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
