"""Housekeeping of the jobs table itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from holdfast.db.base import utcnow
from holdfast.jobs.engine import prune_done
from holdfast.jobs.kinds import JobContext, periodic

KEEP_DONE = timedelta(days=7)
BATCH = 1000


@periodic("jobs.prune", every=timedelta(hours=1))
def prune(ctx: JobContext, payload: dict[str, Any]) -> timedelta | None:
    """Delete done jobs after a week, a batch per transaction so writers never wait long."""
    with ctx.db.write() as session:
        deleted = prune_done(session, older_than=utcnow() - KEEP_DONE, limit=BATCH)
    # A full batch means more are waiting: come back right away, not in an hour.
    return timedelta(0) if deleted == BATCH else None
