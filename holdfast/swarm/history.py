"""Swarm counts in the catalogue, and their history.

`record_counts` is the one place that writes an upload's seeders/leechers/completed:
it takes the largest count any tracker reports for the upload (the embedded tracker's
row and each scraped tracker's row in `swarm_tracker_states`), stores it on the
upload, and adds a `swarm_samples` row when it changed.

The history stays bounded: `prune` keeps every sample for two days, then one per
upload and hour up to 30 days, then one per upload and day up to two years, and
drops what is older. An upload therefore has at most a few thousand samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import Session

from holdfast.catalogue.models import Upload
from holdfast.db import Database
from holdfast.swarm.models import SwarmSample, SwarmTrackerState

FULL_RESOLUTION = timedelta(days=2)
HOURLY = timedelta(days=30)
KEEP = timedelta(days=730)
MAX_POINTS = 5000


def samples(
    db: Database, upload_id: int, since: datetime, *, limit: int = MAX_POINTS
) -> list[tuple[datetime, int, int]]:
    """(measured_at, seeders, leechers) of an upload since `since`, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(SwarmSample.measured_at, SwarmSample.seeders, SwarmSample.leechers)
            .where(SwarmSample.upload_id == upload_id, SwarmSample.measured_at >= since)
            .order_by(SwarmSample.measured_at.desc(), SwarmSample.id.desc())
            .limit(limit)
        ).all()
    return [(at, seeders, leechers) for at, seeders, leechers in reversed(rows)]


def record_counts(session: Session, upload_ids: Iterable[int], now: datetime, source: str) -> int:
    """Recompute the catalogue's counts of these uploads from their tracker rows;
    returns how many changed (each change is also a sample).

    Uses Core statements, so commit listeners are not woken for what is only a
    change of counts.
    """
    ids = sorted(set(upload_ids))
    changed = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        best = {
            upload_id: (seeders or 0, leechers or 0, completed or 0)
            for upload_id, seeders, leechers, completed in session.execute(
                select(
                    SwarmTrackerState.upload_id,
                    func.max(SwarmTrackerState.seeders),
                    func.max(SwarmTrackerState.leechers),
                    func.max(SwarmTrackerState.completed),
                )
                .where(
                    SwarmTrackerState.upload_id.in_(chunk),
                    SwarmTrackerState.last_success_at.is_not(None),
                )
                .group_by(SwarmTrackerState.upload_id)
            )
        }
        current = session.execute(
            select(Upload.id, Upload.seeders, Upload.leechers, Upload.completed).where(
                Upload.id.in_(chunk)
            )
        ).all()
        for upload_id, seeders, leechers, completed in current:
            counts = best.get(upload_id)
            if counts is None:
                continue
            values: dict[str, object] = {"swarm_checked_at": now}
            if counts != (seeders, leechers, completed):
                values.update(seeders=counts[0], leechers=counts[1], completed=counts[2])
                session.add(
                    SwarmSample(
                        upload_id=upload_id,
                        measured_at=now,
                        seeders=counts[0],
                        leechers=counts[1],
                        completed=counts[2],
                        source=source,
                    )
                )
                changed += 1
            session.execute(update(Upload).where(Upload.id == upload_id).values(**values))
    return changed


def _bucket(session: Session, hours: bool) -> ColumnElement[str]:
    column = SwarmSample.measured_at
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour" if hours else "day", column)
    # SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS...' text.
    return func.substr(column, 1, 13 if hours else 10)


def prune(db: Database, now: datetime) -> int:
    """Thin out old samples (see the module's docstring); returns how many went."""
    deleted = 0
    with db.write() as session:
        result = session.execute(delete(SwarmSample).where(SwarmSample.measured_at < now - KEEP))
        deleted += result.rowcount or 0  # type: ignore[attr-defined]
        for newer, older, hours in (
            (now - FULL_RESOLUTION, now - HOURLY, True),
            (now - HOURLY, now - KEEP, False),
        ):
            window = and_(SwarmSample.measured_at < newer, SwarmSample.measured_at >= older)
            keep = (
                select(func.min(SwarmSample.id))
                .where(window)
                .group_by(SwarmSample.upload_id, _bucket(session, hours))
            )
            result = session.execute(
                delete(SwarmSample)
                .where(window, SwarmSample.id.not_in(keep))
                .execution_options(synchronize_session=False)
            )
            deleted += result.rowcount or 0  # type: ignore[attr-defined]
    return deleted
