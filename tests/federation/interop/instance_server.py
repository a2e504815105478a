"""Child process: one holdfast instance served by uvicorn on 127.0.0.1.

`python -m tests.federation.interop.instance_server SETTINGS_JSON` binds a free port,
builds Settings from the JSON object (plus `port` and `public_url` for that port),
announces `{"port", "base_url"}` and serves until SIGTERM. The instance's event loop
reports its lag to `looplag.json` (JSON lines) in the working folder.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.federation.interop.children import announce, bind_loopback
from tests.federation.interop.looplag import LoopLag


def main() -> None:
    values: dict[str, Any] = json.loads(sys.argv[1])
    scheme_host = values.pop("scheme_host", "http://127.0.0.1")
    sock = bind_loopback(int(values.pop("port", 0)))
    port = sock.getsockname()[1]
    base_url = f"{scheme_host}:{port}"
    ssl = values.pop("ssl", None) or {}
    log_level = values.pop("log_level", "warning")

    import uvicorn

    from holdfast.app import create_app
    from holdfast.settings import Settings

    settings = Settings(**values, port=port, public_url=base_url)
    from holdfast.cli.serve import freeze_after_startup, with_job_process

    job_process = settings.run_jobs and settings.job_process  # as `holdfast serve` does
    app = create_app(settings, jobs_here=not job_process)
    if job_process:
        with_job_process(app, settings)
    freeze_after_startup(app)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        proxy_headers=False,
        ssl_certfile=ssl.get("certfile"),
        ssl_keyfile=ssl.get("keyfile"),
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        monitor = asyncio.create_task(LoopLag().run(report=Path.cwd() / "looplag.json"))
        announce({"port": port, "base_url": base_url})
        try:
            await server.serve(sockets=[sock])
        finally:
            monitor.cancel()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
