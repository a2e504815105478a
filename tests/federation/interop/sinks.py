"""Follower actors on local sink servers, and signed Follows from them."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from holdfast.federation.httpsig import sign_request
from holdfast.federation.keys import InstanceKeys
from tests.federation.interop.children import ChildServer

ACTIVITY_JSON = "application/activity+json"


class SinkServers:
    """`servers` child processes with `per_server` actors each, sharing one RSA key."""

    def __init__(
        self, workdir: Path, *, servers: int, per_server: int, layout: str = "actors"
    ) -> None:
        self.workdir = workdir
        self.layout = layout
        self.keys = InstanceKeys.generate()
        self.children = [
            ChildServer(
                "tests.federation.interop.sink_server",
                str(per_server),
                str(workdir / "sink-keys.json"),
                workdir=workdir / f"sink{n}",
            )
            for n in range(servers)
        ]
        self.actors: list[str] = []
        self._stack = ExitStack()

    def __enter__(self) -> SinkServers:
        self.workdir.mkdir(parents=True, exist_ok=True)
        keys = {
            "public_pem": self.keys.rsa_public_pem,
            "multikey": self.keys.public_key_multibase,
            "layout": self.layout,
        }
        (self.workdir / "sink-keys.json").write_text(json.dumps(keys), encoding="utf-8")
        try:
            for child in self.children:
                info = self._stack.enter_context(child)
                self.actors.extend(info["actors"])
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def bases(self) -> Iterator[str]:
        for child in self.children:
            yield child.info["base_url"]

    def arrivals(self) -> dict[str, list[tuple[float, str]]]:
        """Every actor URL with the (time, activity type) of each delivery it got."""
        found: dict[str, list[tuple[float, str]]] = {}
        for base in self.bases():
            stats = httpx.get(f"{base}/stats", timeout=30).json()
            for n, items in stats.items():
                actor = (
                    f"{base}/actor"
                    if self.layout == "instance" and n == "0"
                    else f"{base}/actors/{n}"
                )
                found[actor] = [(at, kind) for at, kind in items]
        return found

    def received(self, actor: str) -> list[Any]:
        return list(httpx.get(f"{actor}/received", timeout=30).json())

    def signed_post(
        self, actor: str, url: str, activity: dict[str, Any]
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(activity).encode()
        headers = sign_request(
            "POST", url, private_key=self.keys.rsa_private, key_id=f"{actor}#main-key", body=body
        )
        headers["Content-Type"] = ACTIVITY_JSON
        return body, headers

    def follow_all(self, target_actor: str, inbox: str, *, concurrency: int = 16) -> list[int]:
        """Every sink actor sends a signed Follow of `target_actor` to `inbox`; the statuses."""

        async def run() -> list[int]:
            limit = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(timeout=60) as client:

                async def one(actor: str) -> int:
                    activity = {
                        "@context": "https://www.w3.org/ns/activitystreams",
                        "id": f"{actor}#follows/{secrets.token_hex(8)}",
                        "type": "Follow",
                        "actor": actor,
                        "object": target_actor,
                    }
                    body, headers = self.signed_post(actor, inbox, activity)
                    async with limit:
                        response = await client.post(inbox, content=body, headers=headers)
                    return response.status_code

                return list(await asyncio.gather(*(one(actor) for actor in self.actors)))

        return asyncio.run(run())
