"""Federation with bovine-herd (PyPI `bovine-herd`), an ActivityPub server no one here wrote.

A herd runs in a child process on 127.0.0.1 with one actor; the test drives that actor
through bovine's own client (it posts to its outbox, bovine signs and delivers, and
reads its inbox). Both directions:

- the bovine actor follows our instance, gets our Accept, and then receives the
  Create of an upload published here;
- our instance follows the bovine actor, whose client accepts; our follow is then
  accepted on our side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.federation.interop import ops
from tests.federation.interop.bovine import BovineActorClient, BovineHerdServer
from tests.federation.interop.instances import InstanceThread, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def _types(value: Any) -> list[str]:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, list) else [kind]


@pytest.fixture
def herd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with BovineHerdServer(tmp_path / "herd") as info:
        yield info


@pytest.fixture
def node(make_settings: Callable[..., Any]) -> Iterator[InstanceThread]:
    with InstanceThread(make_settings, name="holdfast", federation_auto_accept=True) as served:
        yield served


def test_bovine_follows_us_and_receives_a_create(
    herd: dict[str, Any], node: InstanceThread, tmp_path: Path
) -> None:
    async def follow_and_wait_for_accept(bovine: BovineActorClient) -> None:
        await bovine.follow(node.actor_url)
        await bovine.wait_for(
            lambda item: "Accept" in _types(item) and _id(item.get("actor")) == node.actor_url,
            what="our Accept",
        )

    async def wait_for_create(bovine: BovineActorClient, upload_url: str) -> dict[str, Any]:
        return await bovine.wait_for(
            lambda item: (
                "Create" in _types(item)
                and _id(item.get("actor")) == node.actor_url
                and _id(item.get("object")) == upload_url
            ),
            what=f"the Create of {upload_url}",
        )

    async def run() -> tuple[str, dict[str, Any]]:
        async with BovineActorClient(herd) as bovine:
            await follow_and_wait_for_accept(bovine)
            assert ops.follow_state(node, bovine.actor_id, "inbound") == "accepted"
            upload = ops.publish_upload(node, tmp_path / "torrents")
            upload_url = ops.federation(node).upload_url(upload.infohash)
            return upload_url, await wait_for_create(bovine, upload_url)

    upload_url, create = asyncio.run(run())
    # What bovine kept (it re-compacts what it stores) is still the Create of our Upload.
    assert _id(create["actor"]) == node.actor_url
    assert _id(create["object"]) == upload_url


def test_we_follow_a_bovine_actor_and_it_accepts(
    herd: dict[str, Any], node: InstanceThread
) -> None:
    async def accept_our_follow(bovine: BovineActorClient) -> dict[str, Any]:
        follow = await bovine.wait_for(
            lambda item: "Follow" in _types(item) and _id(item.get("actor")) == node.actor_url,
            what="our Follow",
        )
        await bovine.accept(follow)
        return follow

    async def run() -> dict[str, Any]:
        async with BovineActorClient(herd) as bovine:
            result = await asyncio.to_thread(ops.follow, node, bovine.actor_id)
            assert result["state"] == "pending"
            return await accept_our_follow(bovine)

    follow = asyncio.run(run())
    assert _id(follow.get("object")) == herd["actor_id"]
    wait_until(
        lambda: ops.follow_state(node, herd["actor_id"], "outbound") == "accepted",
        timeout=60,
        what="our follow of the bovine actor to be accepted",
    )
