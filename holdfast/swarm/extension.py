"""The embedded tracker, run by the instance (installed by `create_app`).

- `GET /announce` and `GET /scrape` on the main app (`HTTPTrackerApp` in front of
  the web framework, so announces never go through routing); the UDP tracker
  (BEP 15) on `tracker_udp_port` in a thread of its own; optionally the dedicated
  HTTP listener on `tracker_http_port`.
- What it tracks: the v1 and truncated v2 infohashes of approved uploads of approved
  datasets (any infohash with `tracker_open`). The allow-list follows the catalogue
  through `db.on_commit` (an upload approved is tracked at once, one removed stops
  being tracked at once) and is rebuilt in full every few minutes.
- Every minute it expires peers and writes the counts of swarms that changed to the
  catalogue (`history.record_counts`): a hybrid's two swarms are counted together,
  a peer in both counted once.
- `GET /api/v1/uploads/{infohash}/swarm`: the counts, each tracker's state and the
  history of an upload, for whoever may see the upload.

The running `TrackerService` is `instance.services["tracker"]`; `udp_port` and
`http_port` are the ports actually bound (0 in the settings picks a free one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel
from sqlalchemy import select

from holdfast.api.deps import CurrentAccount, InstanceDep
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.db import Changes
from holdfast.db.base import utcnow
from holdfast.instance import Instance
from holdfast.swarm import history
from holdfast.swarm.fastpath import make_tracker
from holdfast.swarm.http_tracker import HTTPTrackerApp, start_http_tracker
from holdfast.swarm.models import EMBEDDED, SampleSource, SwarmTrackerState
from holdfast.swarm.tracker import AllowList, SwarmStats, SwarmUpdate, Tracker, allow_all
from holdfast.swarm.udp_tracker import UDPTrackerThread

log = logging.getLogger(__name__)

STATS_EVERY = 60.0  # seconds between writes of the embedded tracker's counts
REFRESH_EVERY = 300.0  # seconds between full rebuilds of the allow-list
_CHUNK = 500

Keys = tuple[bytes | None, bytes | None]  # an upload's (v1, truncated v2) swarm keys


def _keys(v1: str | None, v2_short: str | None) -> Keys:
    return (bytes.fromhex(v1) if v1 else None, bytes.fromhex(v2_short) if v2_short else None)


def _tracked() -> Any:
    return (Upload.status == Status.approved.value) & (Dataset.status == Status.approved.value)


class TrackerService:
    """The instance's tracker: its peer store, allow-list, listeners and stats."""

    def __init__(self, instance: Instance) -> None:
        settings = instance.settings
        self.instance = instance
        self.db = instance.db
        self.allow_list = AllowList()
        self.tracker: Tracker = make_tracker(
            is_allowed=allow_all if settings.tracker_open else self.allow_list,
            interval=settings.tracker_interval,
            min_interval=min(300, settings.tracker_interval),
            max_peers=settings.tracker_max_peers,
        )
        self.udp: UDPTrackerThread | None = None
        self.http_server: asyncio.Server | None = None
        self.udp_port: int | None = None
        self.http_port: int | None = None
        # upload id -> its swarm keys, and each key -> its upload id
        self._uploads: dict[int, Keys] = {}
        self._owner: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._refreshing: set[int] | None = None
        self._pending: dict[bytes, SwarmUpdate] = {}
        self._storing = threading.Lock()  # one store_stats at a time

    # --- the allow-list

    def refresh(self) -> int:
        """Rebuild the allow-list from the catalogue; returns how many uploads it has."""
        with self._lock:
            self._refreshing = set()
        try:
            with self.db.read() as session:
                rows = session.execute(
                    select(Upload.id, Upload.infohash_v1, Upload.infohash_v2_short)
                    .join(Dataset, Upload.dataset_id == Dataset.id)
                    .where(_tracked())
                ).all()
            uploads = {row[0]: _keys(row[1], row[2]) for row in rows}
            with self._lock:
                gone = set(self._owner)
                self._uploads = uploads
                self._owner = {k: i for i, keys in uploads.items() for k in keys if k}
                self.allow_list.replace(self._owner)
                gone -= set(self._owner)
                again, self._refreshing = self._refreshing, None
        except BaseException:
            with self._lock:
                self._refreshing = None
            raise
        self._forget(gone)
        # Changes committed while the catalogue was being read may be missing from it.
        if again:
            self._apply(again, ())
        return len(uploads)

    def on_commit(self, changes: Changes) -> None:
        """Commit listener: follow uploads and datasets that changed."""
        upload_ids = [ident for table, ident in changes if table == "uploads"]
        dataset_ids = [ident for table, ident in changes if table == "datasets"]
        if upload_ids or dataset_ids:
            self._apply(upload_ids, dataset_ids)

    def _apply(self, upload_ids: Iterable[int], dataset_ids: Iterable[int]) -> None:
        upload_ids, dataset_ids = sorted(set(upload_ids)), sorted(set(dataset_ids))
        rows: list[Any] = []
        with self.db.read() as session:
            for ids, column in ((upload_ids, Upload.id), (dataset_ids, Upload.dataset_id)):
                for start in range(0, len(ids), _CHUNK):
                    rows.extend(
                        session.execute(
                            select(
                                Upload.id,
                                Upload.infohash_v1,
                                Upload.infohash_v2_short,
                                _tracked(),
                            )
                            .join(Dataset, Upload.dataset_id == Dataset.id)
                            .where(column.in_(ids[start : start + _CHUNK]))
                        ).all()
                    )
        seen = {row[0] for row in rows}
        gone: set[bytes] = set()
        with self._lock:
            if self._refreshing is not None:
                self._refreshing.update(upload_ids)
                self._refreshing.update(seen)
            for upload_id, v1, v2_short, tracked in [
                *rows,
                *((i, None, None, False) for i in upload_ids if i not in seen),  # deleted
            ]:
                old = self._uploads.pop(upload_id, (None, None))
                for key in old:
                    if key and self._owner.get(key) == upload_id:
                        del self._owner[key]
                        self.allow_list.discard(key)
                        gone.add(key)
                if tracked:
                    keys = _keys(v1, v2_short)
                    self._uploads[upload_id] = keys
                    for key in keys:
                        if key:
                            self._owner[key] = upload_id
                            self.allow_list.add(key)
                            gone.discard(key)
        self._forget(gone)

    def _forget(self, keys: Iterable[bytes]) -> None:
        keys = list(keys)
        if keys and not self.instance.settings.tracker_open:
            with self.tracker.lock:
                for key in keys:
                    self.tracker.forget(key)

    def is_tracked(self, infohash: bytes) -> bool:
        return self.tracker.is_allowed(infohash)

    # --- counts for the catalogue

    def upload_stats(self, upload_id: int) -> SwarmStats | None:
        """The embedded tracker's live counts for an upload (None: not tracked)."""
        keys = self._uploads.get(upload_id)
        if keys is None:
            return None
        return self._stats(keys)

    def _stats(self, keys: Keys) -> SwarmStats:
        v1, v2 = keys
        with self.tracker.lock:
            if v1 and v2:
                return self.tracker.hybrid_stats(v1, v2)
            return self.tracker.stats(v1 or v2 or b"")

    def store_stats(self, now: datetime | None = None) -> int:
        """Expire peers and write the counts of uploads whose swarms changed;
        returns how many uploads were written. Nothing is lost if writing fails."""
        with self._storing:
            return self._store_stats(now or utcnow())

    def _store_stats(self, now: datetime) -> int:
        with self.tracker.lock:
            self.tracker.expire()
            drained = self.tracker.drain_changed()
        for key, update in drained.items():
            earlier = self._pending.get(key)
            if earlier is not None:
                update = SwarmUpdate(
                    update.seeders,
                    update.leechers,
                    update.newly_completed + earlier.newly_completed,
                )
            self._pending[key] = update
        if not self._pending:
            return 0
        work: dict[int, tuple[SwarmStats, int]] = {}
        with self._lock:
            owners = {key: self._owner.get(key) for key in self._pending}
            uploads = {i: self._uploads[i] for i in set(owners.values()) if i is not None}
        for upload_id, keys in uploads.items():
            # A hybrid-aware client reports one completion to both swarms.
            newly = max(
                (self._pending[k].newly_completed for k in keys if k in self._pending),
                default=0,
            )
            work[upload_id] = (self._stats(keys), newly)
        if work:
            self._write(work, now)
        self._pending = {}
        return len(work)

    def _write(self, work: dict[int, tuple[SwarmStats, int]], now: datetime) -> None:
        ids = sorted(work)
        with self.db.write() as session:
            existing = {
                row.upload_id: row
                for start in range(0, len(ids), _CHUNK)
                for row in session.scalars(
                    select(SwarmTrackerState).where(
                        SwarmTrackerState.url == EMBEDDED,
                        SwarmTrackerState.upload_id.in_(ids[start : start + _CHUNK]),
                    )
                )
            }
            present = set(
                session.scalars(
                    select(Upload.id).where(Upload.id.in_(ids))  # not deleted meanwhile
                )
            )
            for upload_id in ids:
                if upload_id not in present:
                    continue
                stats, newly = work[upload_id]
                row = existing.get(upload_id)
                if row is None:
                    row = SwarmTrackerState(upload_id=upload_id, url=EMBEDDED, completed=0)
                    session.add(row)
                row.seeders = stats.seeders
                row.leechers = stats.leechers
                row.completed = (row.completed or 0) + newly
                row.last_scrape_at = row.last_success_at = now
            session.flush()
            history.record_counts(session, present, now, SampleSource.TRACKER)

    # --- life cycle

    async def start(self) -> None:
        settings = self.instance.settings
        await asyncio.to_thread(self.refresh)
        port = settings.resolved_tracker_udp_port
        try:
            self.udp = UDPTrackerThread(
                self.tracker, settings.host, port, secret=settings.secret_key or ""
            )
        except OSError as exc:
            # The instance still serves HTTP announces; say loudly why UDP is missing.
            log.error(
                "UDP tracker not started: cannot listen on %s:%s (%s)", settings.host, port, exc
            )
        else:
            self.udp.start()
            self.udp_port = self.udp.port
        if settings.tracker_http_port is not None:
            self.http_server = await start_http_tracker(
                self.tracker, settings.host, settings.tracker_http_port
            )
            self.http_port = int(self.http_server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.http_server is not None:
            self.http_server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.http_server.wait_closed(), 2)
        if self.udp is not None:
            await asyncio.to_thread(self.udp.stop)
        self.udp = None

    async def run_periodically(self, every: float, work: Callable[[], object], what: str) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(work)
            except Exception:
                log.exception("tracker: %s failed; trying again in %s s", what, every)


# --- the API route


class TrackerStateOut(BaseModel):
    url: str
    embedded: bool
    seeders: int | None
    leechers: int | None
    completed: int | None
    last_scrape_at: datetime | None
    last_success_at: datetime | None
    error_kind: str | None
    failure_reason: str | None
    next_attempt_at: datetime | None


class SwarmPointOut(BaseModel):
    at: datetime
    seeders: int
    leechers: int


class SwarmOut(BaseModel):
    infohash: str
    seeders: int | None
    leechers: int | None
    completed: int | None
    checked_at: datetime | None
    trackers: list[TrackerStateOut]
    history: list[SwarmPointOut]


router = APIRouter(tags=["uploads"])


@router.get("/uploads/{infohash}/swarm", response_model=SwarmOut)
def get_swarm(
    infohash: str,
    viewer: CurrentAccount,
    instance: InstanceDep,
    days: Annotated[int, Query(ge=1, le=730, description="History to include.")] = 30,
) -> SwarmOut:
    """An upload's seeders, leechers and completed downloads: the counts shown in the
    catalogue (the largest any tracker reports), each tracker's last answer or
    failure reason, and the history of the counts."""
    upload = instance.catalogue.get_upload(viewer, infohash)
    with instance.db.read() as session:
        states = session.scalars(
            select(SwarmTrackerState)
            .where(SwarmTrackerState.upload_id == upload.id)
            .order_by(SwarmTrackerState.url != EMBEDDED, SwarmTrackerState.url)
        ).all()
    since = utcnow() - timedelta(days=days)
    return SwarmOut(
        infohash=upload.infohash,
        seeders=upload.seeders,
        leechers=upload.leechers,
        completed=upload.completed,
        checked_at=upload.swarm_checked_at,
        trackers=[
            TrackerStateOut(
                url=instance.settings.announce_url if s.url == EMBEDDED else s.url,
                embedded=s.url == EMBEDDED,
                seeders=s.seeders,
                leechers=s.leechers,
                completed=s.completed,
                last_scrape_at=s.last_scrape_at,
                last_success_at=s.last_success_at,
                error_kind=s.error_kind,
                failure_reason=s.failure_reason,
                next_attempt_at=s.next_attempt_at,
            )
            for s in states
        ],
        history=[
            SwarmPointOut(at=at, seeders=seeders, leechers=leechers)
            for at, seeders, leechers in history.samples(instance.db, upload.id, since)
        ],
    )


# --- installation


def install(
    app: FastAPI, instance: Instance
) -> Callable[[], AbstractAsyncContextManager[None]] | None:
    app.include_router(router, prefix="/api/v1")
    if not instance.settings.tracker:
        return None
    service = TrackerService(instance)
    instance.db.on_commit(service.on_commit)
    app.add_middleware(HTTPTrackerApp, tracker=service.tracker)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await service.start()
        instance.services["tracker"] = service
        tasks = [
            asyncio.create_task(
                service.run_periodically(STATS_EVERY, service.store_stats, "storing counts")
            ),
            asyncio.create_task(
                service.run_periodically(REFRESH_EVERY, service.refresh, "refreshing")
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(service.store_stats)
            await service.stop()
            instance.services.pop("tracker", None)

    return running


__all__ = ["TrackerService", "install", "router"]
