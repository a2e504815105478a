"""Child process: COUNT follower actors whose inboxes record what arrives.

`python -m tests.federation.interop.sink_server COUNT KEYS_JSON_FILE` serves
`/actors/N` (an actor document whose `publicKey` is the file's `public_pem` and, when
the file has a `multikey`, whose `assertionMethod` is that Ed25519 key), accepts any
POST to `/actors/N/inbox` with 202, and reports arrivals at `/stats`; the activities
themselves are at `/actors/N/received`. With `"layout": "instance"` actor 0 lives at
`/actor` (`/actor/inbox`, ...), where a holdfast instance keeps its actor. Files put in
`static/` of its working folder are served under `/static/` (`.torrent` files as
BitTorrent, the rest as ActivityPub JSON). It checks no signatures: it only counts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.federation.interop.children import announce, bind_loopback

ACTIVITY_JSON = "application/activity+json"


def build_app(count: int, keys: dict[str, Any], base_url: str) -> Starlette:
    arrivals: dict[int, list[tuple[float, str]]] = defaultdict(list)
    received: dict[int, list[Any]] = defaultdict(list)

    instance_layout = keys.get("layout") == "instance"

    def actor_url(n: int) -> str:
        if instance_layout and n == 0:
            return f"{base_url}/actor"
        return f"{base_url}/actors/{n}"

    def number(request: Request) -> int:
        n = int(request.path_params.get("n", 0))
        if not 0 <= n < count:
            raise ValueError(n)
        return n

    async def actor(request: Request) -> Response:
        try:
            n = number(request)
        except ValueError:
            return Response(status_code=404)
        url = actor_url(n)
        document = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": url,
            "type": "Person",
            "preferredUsername": f"sink{n}",
            "inbox": f"{url}/inbox",
            "outbox": f"{url}/outbox",
            "followers": f"{url}/followers",
            "following": f"{url}/following",
            "publicKey": {
                "id": f"{url}#main-key",
                "owner": url,
                "publicKeyPem": keys["public_pem"],
            },
        }
        if keys.get("multikey"):
            document["@context"].append("https://w3id.org/security/multikey/v1")
            document["assertionMethod"] = [
                {
                    "id": f"{url}#ed25519-key",
                    "type": "Multikey",
                    "controller": url,
                    "publicKeyMultibase": keys["multikey"],
                }
            ]
        return Response(json.dumps(document), media_type=ACTIVITY_JSON)

    async def inbox(request: Request) -> Response:
        try:
            n = number(request)
        except ValueError:
            return Response(status_code=404)
        body = await request.body()
        try:
            activity = json.loads(body)
            kind = str(activity.get("type"))
        except (ValueError, AttributeError):
            activity, kind = None, "unreadable"
        arrivals[n].append((time.time(), kind))
        received[n].append(activity)
        return Response(status_code=202)

    async def collection(request: Request) -> Response:
        url = str(request.url).split("?", 1)[0]
        document = {"id": url, "type": "OrderedCollection", "totalItems": 0, "orderedItems": []}
        return Response(json.dumps(document), media_type=ACTIVITY_JSON)

    static = (Path.cwd() / "static").resolve()

    async def static_file(request: Request) -> Response:
        path = (static / request.path_params["path"]).resolve()
        if not path.is_relative_to(static) or not path.is_file():
            return Response(status_code=404)
        kind = "application/x-bittorrent" if path.suffix == ".torrent" else ACTIVITY_JSON
        return Response(path.read_bytes(), media_type=kind)

    async def stats(request: Request) -> Response:
        return JSONResponse({str(n): arrivals[n] for n in range(count)})

    async def got(request: Request) -> Response:
        try:
            n = number(request)
        except ValueError:
            return Response(status_code=404)
        return JSONResponse(received[n])

    return Starlette(
        routes=[
            Route("/actor", actor),
            Route("/actor/inbox", inbox, methods=["POST"]),
            Route("/actor/received", got),
            Route("/actors/{n}", actor),
            Route("/actors/{n}/inbox", inbox, methods=["POST"]),
            Route("/actors/{n}/received", got),
            Route("/actors/{n}/{kind}", collection),
            Route("/static/{path:path}", static_file),
            Route("/stats", stats),
        ]
    )


def main() -> None:
    count = int(sys.argv[1])
    keys = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    sock = bind_loopback()
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(build_app(count, keys, base_url), log_level="warning"))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
        announce(
            {
                "port": port,
                "base_url": base_url,
                "actors": [
                    f"{base_url}/actor"
                    if keys.get("layout") == "instance" and n == 0
                    else f"{base_url}/actors/{n}"
                    for n in range(count)
                ],
            }
        )
        await server.serve(sockets=[sock])

    asyncio.run(serve())


if __name__ == "__main__":
    main()
