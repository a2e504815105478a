"""What the interop tests ask of a holdfast instance served in a thread.

Kept in one place because it goes through the federation service's public functions.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from tests.federation.interop.instances import InstanceThread


def federation(node: InstanceThread) -> Any:
    from holdfast.federation.service import Federation

    service = getattr(node.app.state, "federation", None)
    if service is not None:
        return service
    instance = node.instance
    return instance.services.get("federation") or Federation(instance.db, instance.settings)


def follow(node: InstanceThread, actor_id: str) -> dict[str, Any]:
    """The instance follows `actor_id` (signed Follow delivered by a job)."""
    from holdfast.federation.netguard import guarded_client

    fed = federation(node)

    async def run() -> dict[str, Any]:
        async with guarded_client(allow_private=True) as client:
            result: dict[str, Any] = await fed.follow(client, actor_id)
            return result

    return asyncio.run(run())


def follow_state(node: InstanceThread, actor_id: str, direction: str) -> str | None:
    for row in federation(node).follows(direction):
        if row.get("actor") == actor_id or row.get("actor_id") == actor_id:
            return str(row.get("state"))
    return None


def publish_upload(node: InstanceThread, tmp: Path, *, title: str = "Sea surface") -> Any:
    """An approved dataset with one approved upload, by a fresh uploader account."""
    from holdfast.accounts.models import Role
    from tests.instance.helpers import make_dataset, make_upload, make_user

    instance = node.instance
    user = make_user(instance, f"uploader{secrets.token_hex(4)}", Role.uploader)
    dataset = make_dataset(instance, user, title=title)
    tmp.mkdir(parents=True, exist_ok=True)
    return make_upload(instance, user, dataset.slug, tmp)
