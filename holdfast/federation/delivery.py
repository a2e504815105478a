"""Delivering activities to inboxes: signed POSTs, the way Mastodon expects them.

- `deliver(client, federation, inbox, body)`: one signed POST (draft-cavage
  rsa-sha256 with a Digest header).
- `deliver_many(client, federation, inboxes, body)`: the same body to many inboxes
  over one client, at most `FANOUT_CONCURRENCY` POSTs in flight; returns the
  inboxes that did not take it.
- `queue_fanout(session, item_id, inboxes)`: in the caller's transaction, one
  `federation.fanout` job per `FANOUT_BATCH` inboxes (a single inbox gets a
  `federation.deliver` job straight away).
- `federation.fanout` {item, inboxes}: delivers one outbox item to its inboxes from
  one job; every inbox that failed and may succeed later gets its own
  `federation.deliver` job (exponential backoff from there), written before the
  fan-out job ends, so a failed delivery is never lost. A crash part-way runs the
  whole fan-out again: inboxes may see an activity twice (they deduplicate by id),
  never not at all.

The jobs run in `holdfast.federation.jobs`' worker-thread event loops, never on the
server's loop; this module is imported by `holdfast.federation.jobs`, which is how
the job runner learns of `federation.fanout`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from holdfast.federation.documents import ACTIVITY_JSON
from holdfast.federation.errors import FederationError
from holdfast.federation.fetch import USER_AGENT
from holdfast.federation.models import OutboxItem
from holdfast.federation.netguard import check_url
from holdfast.jobs import JobContext, JobFailed, enqueue, job

log = logging.getLogger("holdfast.federation")

FANOUT_CONCURRENCY = 32
FANOUT_BATCH = 250  # inboxes per fan-out job (bounds the payload and one job's time)
RETRY_FIRST_SECONDS = 10.0  # an inbox that failed in a fan-out is tried again after this
FANOUT_LOCK_SECONDS = 1800.0  # FANOUT_BATCH slow inboxes, 32 at a time, 10 s timeouts
DELIVER_KIND = "federation.deliver"


class DeliveryFailed(FederationError):
    """The inbox did not take the activity. `final` when retrying cannot help."""

    def __init__(
        self, detail: str, *, final: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.final = final
        self.retry_after = retry_after


async def deliver(client: httpx.AsyncClient, federation: Any, inbox: str, body: bytes) -> int:
    """POST `body` to `inbox`, signed with draft-cavage rsa-sha256 and a Digest header."""
    check_url(inbox)
    headers = {
        "Content-Type": ACTIVITY_JSON,
        "Accept": ACTIVITY_JSON,
        "User-Agent": USER_AGENT,
    }
    headers.update(federation.sign("POST", inbox, body))
    try:
        response = await client.post(inbox, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"POST {inbox} failed: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    if status in (408, 429) or status >= 500:
        after = response.headers.get("retry-after", "")
        raise DeliveryFailed(
            f"{inbox} answered {status}",
            retry_after=float(after) if after.isdigit() and int(after) < 86400 else None,
        )
    raise DeliveryFailed(f"{inbox} refused the activity with {status}", final=True)


async def deliver_many(
    client: httpx.AsyncClient,
    federation: Any,
    inboxes: Iterable[str],
    body: bytes,
    *,
    concurrency: int = FANOUT_CONCURRENCY,
) -> dict[str, DeliveryFailed]:
    """POST `body` to every inbox (each once), at most `concurrency` at a time.

    Returns the inboxes that did not take it, each with why: `final` ones refused it
    (or are addresses never posted to), the others may take it later."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    failures: dict[str, DeliveryFailed] = {}

    async def one(inbox: str) -> None:
        async with gate:
            try:
                await deliver(client, federation, inbox, body)
            except DeliveryFailed as exc:
                failures[inbox] = exc
            except FederationError as exc:  # e.g. an address the guard refuses
                failures[inbox] = DeliveryFailed(f"{inbox}: {exc}", final=True)
            except Exception as exc:  # kept as a retry, never lost
                log.exception("delivery to %s failed unexpectedly", inbox)
                failures[inbox] = DeliveryFailed(f"{inbox}: {exc!r}")

    await asyncio.gather(*(one(inbox) for inbox in dict.fromkeys(inboxes)))
    return failures


def delivery_key(item_id: int, inbox: str) -> str:
    return f"fed:{item_id}:{inbox}"[:255]


def queue_fanout(s: Session, item_id: int, inboxes: Iterable[str]) -> None:
    """Queue the delivery of outbox item `item_id` to `inboxes` (in `s`'s transaction)."""
    targets = list(dict.fromkeys(inboxes))
    if len(targets) == 1:
        enqueue(
            s,
            DELIVER_KIND,
            {"item": item_id, "inbox": targets[0]},
            key=delivery_key(item_id, targets[0]),
        )
        return
    for start in range(0, len(targets), FANOUT_BATCH):
        enqueue(
            s,
            fanout_job,
            {"item": item_id, "inboxes": targets[start : start + FANOUT_BATCH]},
            key=f"fed-fanout:{item_id}:{start // FANOUT_BATCH}",
        )


def queue_retries(s: Session, item_id: int, failures: dict[str, DeliveryFailed]) -> int:
    """One `federation.deliver` job per inbox that may take the item later."""
    queued = 0
    for inbox, exc in failures.items():
        if exc.final:
            log.info("delivery of item %s refused: %s", item_id, exc)
            continue
        after = exc.retry_after if exc.retry_after is not None else RETRY_FIRST_SECONDS
        enqueue(
            s,
            DELIVER_KIND,
            {"item": item_id, "inbox": inbox},
            key=delivery_key(item_id, inbox),
            run_at=timedelta(seconds=max(after, 1.0)),
        )
        queued += 1
    return queued


@job("federation.fanout", max_attempts=5, retry_base_seconds=30.0, lock_seconds=FANOUT_LOCK_SECONDS)
def fanout_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    from holdfast.federation.jobs import _federation, run_with_client

    fed = _federation(ctx)
    item_id = int(payload["item"])
    inboxes = payload.get("inboxes")
    if not isinstance(inboxes, list) or not all(isinstance(i, str) for i in inboxes):
        raise JobFailed("a fan-out names its inboxes")
    with ctx.db.read() as s:
        text = s.scalar(select(OutboxItem.json).where(OutboxItem.id == item_id))
    if text is None:
        raise JobFailed("the outbox item is gone")
    # Blocked or outside the allowlist since it was queued: deliver nothing there.
    targets = [inbox for inbox in dict.fromkeys(inboxes) if fed.actor_allowed(inbox)]
    if not targets:
        return
    body = text.encode("utf-8")

    async def send(client: Any) -> dict[str, DeliveryFailed]:
        return await deliver_many(client, fed, targets, body)

    failures: dict[str, DeliveryFailed] = run_with_client(fed, send)
    if failures:
        with ctx.db.write() as s:
            queued = queue_retries(s, item_id, failures)
        log.info(
            "item %s: %d of %d inboxes failed, %d queued for retry",
            item_id,
            len(failures),
            len(targets),
            queued,
        )
