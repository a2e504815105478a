"""A bovine-herd server with one actor, and that actor's client (bovine's own C2S client).

bovine-herd never answers a Follow by itself: its client reads the inbox and sends
the Accept through the outbox, which is what `BovineActorClient.accept_follows` does.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

from tests.federation.interop.children import ChildServer

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


class BovineHerdServer(ChildServer):
    """`bovine_herd_server` in its own folder; `info` has domain, actor_id and secret."""

    def __init__(self, workdir: Path, handle: str = "milkdrop") -> None:
        super().__init__("tests.federation.interop.bovine_herd_server", handle, workdir=workdir)


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


class BovineActorClient:
    """The herd actor's client: posts to its outbox and reads its inbox (Moo-Auth-1)."""

    def __init__(self, info: dict[str, Any]) -> None:
        from bovine import BovineClient

        self.info = info
        self.client = BovineClient(domain=info["domain"], secret=info["secret"])

    @property
    def actor_id(self) -> str:
        return str(self.info["actor_id"])

    async def __aenter__(self) -> BovineActorClient:
        await self.client.init()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.client.session is not None:
            await self.client.session.close()

    async def send(self, activity: dict[str, Any]) -> str:
        response = await self.client.send_to_outbox(activity)
        if response.status >= 400:
            raise RuntimeError(f"bovine refused {activity.get('type')}: {response.status}")
        return str(response.headers.get("location", ""))

    async def inbox(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest inbox items (resolved to objects), at most `limit`."""
        items: list[dict[str, Any]] = []
        async for item in self.client.inbox():
            if isinstance(item, dict):
                items.append(item)
            if len(items) >= limit:
                break
        return items

    async def wait_for(
        self, match: Any, *, timeout: float = 60.0, what: str = "an inbox item"
    ) -> dict[str, Any]:
        """Poll the inbox (bounded by `timeout`) for an item `match(item)` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for item in await self.inbox():
                if match(item):
                    return item
            if time.monotonic() > deadline:
                raise AssertionError(f"bovine's inbox did not get {what} in {timeout} s")
            await asyncio.sleep(0.3)

    async def follow(self, target: str) -> str:
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Follow",
            "actor": self.actor_id,
            "object": target,
            "to": [target],
            "id": f"{self.actor_id}/follow-{secrets.token_hex(6)}",
        }
        return await self.send(activity)

    async def accept(self, follow: dict[str, Any]) -> str:
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Accept",
            "actor": self.actor_id,
            "object": follow,
            "to": [_id(follow.get("actor"))],
        }
        return await self.send(activity)

    async def note(self, content: str) -> str:
        note = self.client.object_factory.note(content=content).as_public().build()
        return await self.send(self.client.activity_factory.create(note).build())
