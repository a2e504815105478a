"""Federation's background jobs: deliveries, peer outbox sync, periodic re-sync.

- `federation.deliver` {item, inbox}: POST one outbox item to one inbox, signed
  (draft-cavage rsa-sha256 with a Digest header). One job per recipient; a failure is
  retried with exponential backoff (10 s doubling, capped at an hour, 10 attempts);
  4xx answers other than 408/429 are final. A blocked peer gets nothing.
- `federation.sync` {peer}: read a followed peer's outbox from its cursor (the
  backfill after an accepted follow; re-runs continue where the last one stopped).
- `federation.receive` {body, sender}: apply an inbox activity whose signature and
  proofs the inbox already checked (it answered 202): the catalogue insert, the
  dataset and `.torrent` fetches. The job takes the sender's other due activities
  with it and applies them together, in order (one transaction for their uploads);
  each job still succeeds, fails or is retried on its own. A Delete of an object not
  known yet is retried a few times (it may have overtaken its Create); a refused
  activity is final.
- `federation.refetch` {object}: an upload whose dataset or `.torrent` could not be
  fetched, tried again with backoff (the origin's URL and the relaying peer's).
- `federation.resync` (periodic): queue `federation.sync` for every followed peer not
  read for `federation_resync_minutes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import traceback
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from holdfast.db.base import utcnow
from holdfast.federation.delivery import DeliveryFailed, deliver, queue_fanout
from holdfast.federation.errors import FederationError
from holdfast.federation.models import Follow, FollowState, OutboxItem, Peer
from holdfast.federation.netguard import guarded_client
from holdfast.jobs import (
    ClaimedJob,
    JobContext,
    JobFailed,
    RetryLater,
    claim_matching,
    complete_many,
    enqueue,
    enqueue_many,
    fail,
    job,
    periodic,
    release,
)

DELIVERY_ATTEMPTS = 10
RECEIVE_ATTEMPTS = 5
REFETCH_AFTER_SECONDS = 30.0
# A Delete of an object not known yet is looked at again after this many seconds
# times its attempt (it may have overtaken its Create).
OVERTAKEN_RETRY_SECONDS = 5.0
UNFETCHED = ("torrent unavailable", "dataset unavailable")


def queue_deliveries(s: Session, item_id: int, inboxes: list[str]) -> None:
    # One fan-out job per batch of inboxes; each inbox that fails gets its own deliver job.
    queue_fanout(s, item_id, inboxes)


def queue_sync(s: Session, peer_id: int) -> None:
    enqueue(s, sync_job, {"peer": peer_id}, key=f"fed-sync:{peer_id}", rerun_finished=True)


def queue_receive_many(s: Session, items: list[tuple[str, str, str | None]]) -> None:
    """Store verified inbox activities, (body, sender, activity id) each, as receive
    jobs in one statement (deduplicated by activity id)."""
    enqueue_many(
        s,
        receive_job,
        [({"body": body, "sender": sender}, _receive_key(i)) for body, sender, i in items],
    )


def _receive_key(activity_id: str | None) -> str | None:
    if not activity_id:
        return None
    return "fed-in:" + hashlib.sha256(activity_id.encode()).hexdigest()


def queue_refetch(s: Session, object_id: str) -> None:
    key = "fed-refetch:" + hashlib.sha256(object_id.encode()).hexdigest()
    enqueue(
        s,
        refetch_job,
        {"object": object_id},
        key=key,
        rerun_finished=True,
        run_at=timedelta(seconds=REFETCH_AFTER_SECONDS),
    )


_loops = threading.local()


def run_with_client(fed: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(client)` on this worker thread's own event loop and guarded client,
    both kept between jobs (a fresh loop and TLS context per activity would cost more
    than applying it)."""
    allow = bool(fed.settings.allow_private_addresses)
    state = getattr(_loops, "state", None)
    if state is None or state[0] != allow or state[1].is_closed():
        loop = asyncio.new_event_loop()
        client = guarded_client(allow_private=allow)
        state = (allow, loop, client)
        _loops.state = state
    _, loop, client = state
    return loop.run_until_complete(work(client))


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


@job("federation.receive", max_attempts=RECEIVE_ATTEMPTS, retry_base_seconds=15.0)
def receive_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Apply this activity together with the sender's other due ones (up to
    `RECEIVE_BATCH`, oldest first, claimed in one write; more are taken while
    deliveries keep arriving, for at most about 2 s), in order, through
    `Receiver.apply_inbox`; each claimed job is then finished on its own, so an
    activity that fails is retried (or given up) alone."""
    from holdfast.federation.replication import Receiver

    fed = _federation(ctx)
    sender = str(payload["sender"])
    others: list[ClaimedJob] = []
    try:
        if not ctx.stopping.is_set():
            others = claim_matching(
                ctx.db,
                ctx.worker,
                receive_job,
                field="sender",
                value=sender,
                limit=RECEIVE_BATCH - 1,
                default_lock_seconds=ctx.settings.job_lock_seconds,
            )
            # While deliveries keep coming, wait a little for more of them (a few larger
            # batches cost less than many small ones, and leave the inbox more time to
            # answer); stop as soon as a wait brings nothing new.
            for _ in range(RECEIVE_GATHER_ROUNDS):
                if len(others) >= RECEIVE_BATCH - 1 or ctx.stopping.wait(RECEIVE_GATHER_SECONDS):
                    break
                more = claim_matching(
                    ctx.db,
                    ctx.worker,
                    receive_job,
                    field="sender",
                    value=sender,
                    limit=RECEIVE_BATCH - 1 - len(others),
                    default_lock_seconds=ctx.settings.job_lock_seconds,
                )
                others += more
                if not more:
                    break
        jobs: list[tuple[ClaimedJob | None, dict[str, Any]]] = [(None, payload)]
        jobs += [(c, c.payload) for c in others]
        activities: list[dict[str, Any]] = []
        held: list[tuple[ClaimedJob | None, dict[str, Any]]] = []
        unreadable: list[ClaimedJob] = []
        for claimed, data in jobs:
            activity = _stored_activity(data)
            if activity is None:
                if claimed is None:
                    raise JobFailed("the stored activity is not a JSON object")
                unreadable.append(claimed)
                continue
            activities.append(activity)
            held.append((claimed, activity))

        async def apply(client: Any) -> list[str | Exception]:
            results: list[str | Exception] = await Receiver(fed, client).apply_inbox(
                activities, sender
            )
            return results

        try:
            results = run_with_client(fed, apply)
        except Exception as exc:
            for claimed in others:
                fail(ctx.db, claimed, receive_job, _error_text(exc))
            others = []
            raise
        for claimed in unreadable:
            fail(
                ctx.db,
                claimed,
                receive_job,
                "JobFailed: the stored activity is not a JSON object",
                permanent=True,
            )
        done: list[ClaimedJob] = []
        refetch: list[str] = []
        mine: str | Exception = "ignored"
        for (claimed, activity), result in zip(held, results, strict=True):
            if isinstance(result, str) and result in UNFETCHED:
                obj = activity.get("object")
                object_id = obj.get("id") if isinstance(obj, dict) else None
                if isinstance(object_id, str):
                    refetch.append(object_id)
            if claimed is None:
                mine = result
                continue
            attempt = claimed.attempt
            if isinstance(result, Exception):
                _fail_one(ctx, claimed, result)
            elif result == "unknown object" and attempt < RECEIVE_ATTEMPTS:
                _forget_seen(ctx, activity.get("id"))
                fail(
                    ctx.db,
                    claimed,
                    receive_job,
                    "RetryLater: the deleted object is not known yet",
                    retry_at=utcnow() + timedelta(seconds=OVERTAKEN_RETRY_SECONDS * attempt),
                )
            else:
                done.append(claimed)
        if refetch:
            with ctx.db.write() as s:
                for object_id in dict.fromkeys(refetch):
                    queue_refetch(s, object_id)
        complete_many(ctx.db, done, receive_job)
        others = []
    except BaseException:
        for claimed in others:  # not finished: hand them back, the attempt not counted
            release(ctx.db, claimed)
        raise
    _finish_mine(ctx, payload, mine)


# A receive job applies at most this many of its sender's activities at once, and
# waits up to RECEIVE_GATHER_ROUNDS times RECEIVE_GATHER_SECONDS for them to arrive.
RECEIVE_BATCH = 100
RECEIVE_GATHER_SECONDS = 0.25
RECEIVE_GATHER_ROUNDS = 8


def _stored_activity(payload: dict[str, Any]) -> dict[str, Any] | None:
    from holdfast.federation.strictjson import loads_strict

    try:
        activity = loads_strict(str(payload["body"]).encode("utf-8"))
    except Exception:  # stored by the inbox: only a damaged row fails here
        return None
    return activity if isinstance(activity, dict) else None


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _fail_one(ctx: JobContext, claimed: ClaimedJob, exc: Exception) -> None:
    from holdfast.federation.replication import Refused

    if isinstance(exc, Refused):
        fail(ctx.db, claimed, receive_job, f"JobFailed: refused: {exc}", permanent=True)
    else:
        fail(ctx.db, claimed, receive_job, _error_text(exc))


def _finish_mine(ctx: JobContext, payload: dict[str, Any], outcome: str | Exception) -> None:
    """The claimed job's own outcome, as the job runner records it."""
    from holdfast.federation.replication import Refused

    if isinstance(outcome, Refused):
        raise JobFailed(f"refused: {outcome}") from outcome
    if isinstance(outcome, Exception):
        raise outcome
    if outcome == "unknown object" and ctx.attempt < RECEIVE_ATTEMPTS:
        # A Delete that overtook its Create: forget we saw it and look again later.
        activity = _stored_activity(payload) or {}
        _forget_seen(ctx, activity.get("id"))
        raise RetryLater(
            "the deleted object is not known yet", after=OVERTAKEN_RETRY_SECONDS * ctx.attempt
        )


def _forget_seen(ctx: JobContext, activity_id: Any) -> None:
    from holdfast.federation.models import SeenActivity

    if isinstance(activity_id, str):
        with ctx.db.write() as s:
            s.execute(delete(SeenActivity).where(SeenActivity.activity_id == activity_id))


@job("federation.refetch", max_attempts=6, retry_base_seconds=60.0)
def refetch_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    from holdfast.federation.replication import Receiver

    fed = _federation(ctx)
    object_id = str(payload["object"])

    async def retry(client: Any) -> str | None:
        outcome: str | None = await Receiver(fed, client).retry_object(object_id)
        return outcome

    outcome = run_with_client(fed, retry)
    if outcome in UNFETCHED:
        raise RuntimeError(f"{object_id}: {outcome}")


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
