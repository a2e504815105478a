"""Scraping the external trackers named in torrents, as jobs.

- `swarm.scrape_all` (periodic, every `scrape_interval_minutes`): groups the
  approved uploads of approved datasets by the trackers their torrents name (the
  instance's own announce URL left out: the embedded tracker reports directly) and
  enqueues one `swarm.scrape` job per tracker that is due (`scrape_trackers.
  next_attempt_at`), keyed by the tracker so a tracker is never scraped twice at once.
- `swarm.scrape` (one tracker): reads the uploads again (one removed meanwhile is
  not scraped), scrapes their v1 and truncated v2 infohashes (`Scraper`: UDP up to
  74 per datagram, HTTP multi-hash with the single-hash fallback, public addresses
  only unless `allow_private_addresses`), and stores each upload's counts and the
  tracker's state: its own failure reason, the kind of error, and when to try again
  (`backoff.TrackerState`: timeouts are retried soon, DNS failures and rate limits
  later). A failure that may pass (timeout, refused, rate limited, DNS, HTTP error)
  is retried by the jobs engine at that time; at most `scrape_concurrency` scrapes
  run at once in a process.
- `swarm.prune_samples` (hourly): thins out the swarm history (`history.prune`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.jobs import JobContext, RetryLater, enqueue, job, periodic
from holdfast.settings import Settings
from holdfast.swarm import history
from holdfast.swarm.backoff import ScrapeFailure, TrackerState
from holdfast.swarm.models import (
    MAX_URL_LENGTH,
    SampleSource,
    ScrapeTracker,
    SwarmTrackerState,
)
from holdfast.swarm.scrape import ScrapeOutcome, Scraper
from holdfast.swarm.tracker import SwarmStats

# Failures worth another attempt soon; the others wait for the next due time.
RETRY = frozenset(
    {
        ScrapeFailure.TIMEOUT,
        ScrapeFailure.REFUSED,
        ScrapeFailure.RATE_LIMITED,
        ScrapeFailure.DNS,
        ScrapeFailure.HTTP_ERROR,
    }
)
SCRAPE_ATTEMPTS = 4
SCRAPE_LOCK_SECONDS = 900.0

_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _scrape_slots(settings: Settings) -> threading.BoundedSemaphore:
    """Bounds the scrapes running at once in this process."""
    with _slots_lock:
        slots = _slots.get(settings.scrape_concurrency)
        if slots is None:
            slots = _slots[settings.scrape_concurrency] = threading.BoundedSemaphore(
                settings.scrape_concurrency
            )
        return slots


def job_key(url: str) -> str:
    return "swarm.scrape:" + hashlib.sha256(url.encode("utf-8")).hexdigest()


def tracker_groups(db: Database, own_announce_url: str) -> dict[str, list[int]]:
    """Tracker URL -> ids of the tracked uploads whose torrents name it."""
    groups: dict[str, list[int]] = defaultdict(list)
    with db.read() as session:
        rows = session.execute(
            select(Upload.id, Upload.trackers)
            .join(Dataset, Upload.dataset_id == Dataset.id)
            .where(
                Upload.status == Status.approved.value,
                Dataset.status == Status.approved.value,
            )
            .execution_options(yield_per=1000)
        )
        for upload_id, tiers in rows:
            for url in _urls(tiers):
                if url != own_announce_url:
                    groups[url].append(upload_id)
    return dict(groups)


def _urls(tiers: Any) -> set[str]:
    urls: set[str] = set()
    if not isinstance(tiers, list):
        return urls
    for tier in tiers:
        if isinstance(tier, list):
            for url in tier:
                if isinstance(url, str) and 0 < len(url.strip()) <= MAX_URL_LENGTH:
                    urls.add(url.strip())
    return urls


@periodic("swarm.scrape_all", every=timedelta(minutes=5))
def scrape_all(ctx: JobContext, payload: dict[str, Any]) -> timedelta:
    """Enqueue a scrape of every tracker that is due."""
    now = utcnow()
    groups = tracker_groups(ctx.db, ctx.settings.announce_url)
    with ctx.db.read() as session:
        not_due = set(
            session.scalars(select(ScrapeTracker.url).where(ScrapeTracker.next_attempt_at > now))
        )
    due = sorted(url for url in groups if url not in not_due)
    for start in range(0, len(due), 200):
        with ctx.db.write() as session:
            for url in due[start : start + 200]:
                enqueue(
                    session,
                    scrape_tracker,
                    {"url": url, "uploads": groups[url]},
                    key=job_key(url),
                    rerun_finished=True,
                )
    return timedelta(minutes=ctx.settings.scrape_interval_minutes)


def _tracked_uploads(db: Database, url: str, ids: list[int]) -> dict[int, list[bytes]]:
    """Upload id -> the infohashes to scrape, for the uploads still tracked and
    still naming `url`."""
    found: dict[int, list[bytes]] = {}
    with db.read() as session:
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(Upload.id, Upload.infohash_v1, Upload.infohash_v2, Upload.trackers)
                .join(Dataset, Upload.dataset_id == Dataset.id)
                .where(
                    Upload.id.in_(ids[start : start + 500]),
                    Upload.status == Status.approved.value,
                    Dataset.status == Status.approved.value,
                )
            )
            for upload_id, v1, v2, tiers in rows:
                if url in _urls(tiers):
                    found[upload_id] = [bytes.fromhex(h) for h in (v1, v2) if h]
    return found


def _combined(stats: list[SwarmStats]) -> SwarmStats:
    """A hybrid's two swarms as another tracker reports them: which peers are in
    both cannot be told from a scrape, so the larger counts (a lower bound)."""
    return SwarmStats(
        max(s.seeders for s in stats),
        max(s.leechers for s in stats),
        max(s.completed for s in stats),
    )


async def _scrape(settings: Settings, url: str, hashes: list[bytes], multi: bool | None) -> Any:
    async with Scraper(
        allow_private_addresses=settings.allow_private_addresses,
        timeout=settings.scrape_timeout_seconds,
        udp_timeout=min(3.0, settings.scrape_timeout_seconds),
        max_trackers=1,
    ) as scraper:
        return await scraper.scrape(
            url, hashes, multi_scrape=multi, deadline=SCRAPE_LOCK_SECONDS / 2
        )


@job(
    "swarm.scrape",
    max_attempts=SCRAPE_ATTEMPTS,
    lock_seconds=SCRAPE_LOCK_SECONDS,
    retry_base_seconds=60.0,
)
def scrape_tracker(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Scrape one tracker for the uploads that name it."""
    url = payload.get("url")
    ids = payload.get("uploads")
    if not isinstance(url, str) or not isinstance(ids, list):
        return None
    uploads = _tracked_uploads(ctx.db, url, [i for i in ids if isinstance(i, int)])
    if not uploads:
        return None
    with ctx.db.read() as session:
        row = session.scalars(select(ScrapeTracker).where(ScrapeTracker.url == url)).first()
        multi = row.multi_scrape if row is not None else None
        before = _state(url, row)
    hashes = [h for keys in uploads.values() for h in keys]
    with _scrape_slots(ctx.settings):
        outcome: ScrapeOutcome = asyncio.run(_scrape(ctx.settings, url, hashes, multi))
    now = utcnow()
    state = before.after(outcome, now)
    store_outcome(ctx.db, url, uploads, outcome, state, now)
    error = outcome.error
    if error is not None and error.kind in RETRY and state.next_attempt_at is not None:
        raise RetryLater(f"{error.kind.value}: {error.message}", after=state.next_attempt_at)
    return None


def _state(url: str, row: ScrapeTracker | None) -> TrackerState:
    if row is None:
        return TrackerState(url)
    return TrackerState(
        url,
        consecutive_failures=row.consecutive_failures,
        last_failure=ScrapeFailure(row.last_failure) if row.last_failure else None,
        last_message=row.last_message,
        multi_scrape=row.multi_scrape,
        last_attempt_at=row.last_attempt_at,
        last_success_at=row.last_success_at,
        next_attempt_at=row.next_attempt_at,
    )


def store_outcome(
    db: Database,
    url: str,
    uploads: dict[int, list[bytes]],
    outcome: ScrapeOutcome,
    state: TrackerState,
    now: datetime,
) -> None:
    """Write one scrape's results: the tracker's state, and each upload's counts
    (or the failure) under this tracker."""
    error = outcome.error
    with db.write() as session:
        tracker = session.scalars(
            select(ScrapeTracker).where(ScrapeTracker.url == url).with_for_update()
        ).first()
        if tracker is None:
            tracker = ScrapeTracker(url=url)
            session.add(tracker)
        tracker.consecutive_failures = state.consecutive_failures
        tracker.last_failure = state.last_failure.value if state.last_failure else None
        tracker.last_message = state.last_message
        tracker.multi_scrape = state.multi_scrape
        tracker.last_attempt_at = state.last_attempt_at
        tracker.last_success_at = state.last_success_at
        tracker.next_attempt_at = state.next_attempt_at

        ids = sorted(uploads)
        existing = {
            row.upload_id: row
            for row in session.scalars(
                select(SwarmTrackerState).where(
                    SwarmTrackerState.url == url, SwarmTrackerState.upload_id.in_(ids)
                )
            )
        }
        present = set(session.scalars(select(Upload.id).where(Upload.id.in_(ids))))
        counted: list[int] = []
        for upload_id in ids:
            if upload_id not in present:
                continue
            row = existing.get(upload_id)
            if row is None:
                row = SwarmTrackerState(upload_id=upload_id, url=url)
                session.add(row)
            row.last_scrape_at = now
            row.next_attempt_at = state.next_attempt_at
            found = [outcome.stats[k[:20]] for k in uploads[upload_id] if k[:20] in outcome.stats]
            if found:
                counts = _combined(found)
                row.seeders, row.leechers, row.completed = (
                    counts.seeders,
                    counts.leechers,
                    counts.completed,
                )
                row.last_success_at = now
                counted.append(upload_id)
            if error is not None and not found:
                row.error_kind = error.kind.value
                row.failure_reason = error.message
            elif found:
                row.error_kind = None
                row.failure_reason = None
            else:
                # The tracker answered but does not know this torrent.
                row.seeders = row.leechers = row.completed = None
                row.last_success_at = None
                row.error_kind = None
                row.failure_reason = "the tracker does not know this torrent"
        session.flush()
        history.record_counts(session, present, now, SampleSource.SCRAPE)


@periodic("swarm.prune_samples", every=timedelta(hours=1))
def prune_samples(ctx: JobContext, payload: dict[str, Any]) -> None:
    history.prune(ctx.db, utcnow())
