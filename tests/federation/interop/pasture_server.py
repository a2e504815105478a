"""Child process: fediverse-pasture's `verify_actor` server (PyPI `fediverse-pasture`).

Run in an empty folder (it keeps its generated actors in `data.toml` there). It binds
127.0.0.1 and serves its test actors (alice, bob, claire, dean, emily, frank) over
plain http; `GET /?actor_uri=URL` with `Accept: application/json` runs the checks.
"""

from __future__ import annotations

import asyncio
import signal

from tests.federation.interop.children import announce, bind_loopback


def main() -> None:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    domain = f"127.0.0.1:{port}"

    from fediverse_pasture.verify_actor import build_app
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    app = build_app(False, domain, False, 20)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.graceful_timeout = 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        announce({"port": port, "base_url": f"http://{domain}"})
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())


if __name__ == "__main__":
    main()
