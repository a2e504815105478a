"""Federation's background jobs: deliveries, peer outbox sync, periodic re-sync.

- `federation.deliver` {item, inbox}: POST one outbox item to one inbox, signed
  (draft-cavage rsa-sha256 with a Digest header). One job per recipient; a failure is
  retried with exponential backoff (10 s doubling, capped at an hour, 10 attempts);
  4xx answers other than 408/429 are final. A blocked peer gets nothing.
- `federation.sync` {peer}: read a followed peer's outbox from its cursor (the
  backfill after an accepted follow; re-runs continue where the last one stopped).
- `federation.resync` (periodic): queue `federation.sync` for every followed peer not
  read for `federation_resync_minutes`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from holdfast.db.base import utcnow
from holdfast.federation.delivery import DeliveryFailed, deliver
from holdfast.federation.errors import FederationError
from holdfast.federation.models import Follow, FollowState, OutboxItem, Peer
from holdfast.federation.netguard import guarded_client
from holdfast.jobs import JobContext, JobFailed, RetryLater, enqueue, job, periodic

DELIVERY_ATTEMPTS = 10


def queue_deliveries(s: Session, item_id: int, inboxes: list[str]) -> None:
    for inbox in inboxes:
        enqueue(
            s, deliver_job, {"item": item_id, "inbox": inbox}, key=f"fed:{item_id}:{inbox}"[:255]
        )


def queue_sync(s: Session, peer_id: int) -> None:
    enqueue(s, sync_job, {"peer": peer_id}, key=f"fed-sync:{peer_id}", rerun_finished=True)


def _federation(ctx: JobContext) -> Any:
    from holdfast.federation.service import Federation

    fed = Federation(ctx.db, ctx.settings)
    fed.keys  # noqa: B018 - loaded before any transaction of the job
    return fed


@job("federation.deliver", max_attempts=DELIVERY_ATTEMPTS, retry_base_seconds=10.0)
def deliver_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    fed = _federation(ctx)
    inbox = str(payload["inbox"])
    with ctx.db.read() as s:
        body = s.scalar(select(OutboxItem.json).where(OutboxItem.id == int(payload["item"])))
    if body is None:
        raise JobFailed("the outbox item is gone")
    if not fed.actor_allowed(inbox):
        return  # blocked or outside the allowlist since: deliver nothing
    try:
        asyncio.run(_deliver(fed, inbox, body.encode("utf-8")))
    except DeliveryFailed as exc:
        if exc.final:
            raise JobFailed(str(exc)) from exc
        if exc.retry_after is not None:
            raise RetryLater(str(exc), after=exc.retry_after) from exc
        raise


async def _deliver(fed: Any, inbox: str, body: bytes) -> None:
    async with guarded_client(allow_private=fed.settings.allow_private_addresses) as client:
        await deliver(client, fed, inbox, body)


@job("federation.sync", max_attempts=6, retry_base_seconds=30.0, lock_seconds=1800)
def sync_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    fed = _federation(ctx)
    try:
        asyncio.run(_sync(fed, int(payload["peer"])))
    except (FederationError, httpx.HTTPError) as exc:
        raise RetryLater(f"peer unreachable: {exc}", after=timedelta(minutes=5)) from exc


async def _sync(fed: Any, peer_id: int) -> dict[str, int]:
    from holdfast.federation.replication import Receiver

    async with guarded_client(allow_private=fed.settings.allow_private_addresses) as client:
        counts: dict[str, int] = await Receiver(fed, client).sync_peer(peer_id)
        return counts


@periodic("federation.resync", every=timedelta(minutes=5))
def resync_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    if not ctx.settings.federation:
        return
    due = utcnow() - timedelta(minutes=ctx.settings.federation_resync_minutes)
    with ctx.db.write() as s:
        peers = s.scalars(
            select(Peer.id)
            .join(Follow, Follow.peer_id == Peer.id)
            .where(
                Follow.direction == "outbound",
                Follow.state == FollowState.accepted.value,
                Peer.blocked.is_(False),
                (Peer.synced_at.is_(None)) | (Peer.synced_at < due),
            )
        ).all()
        for peer_id in peers:
            queue_sync(s, peer_id)


def describe(item_json: str) -> str:
    activity = json.loads(item_json)
    return f"{activity.get('type')} {activity.get('id')}"
