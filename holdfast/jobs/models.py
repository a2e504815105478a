"""The `jobs` table: one row per piece of background work.

See `holdfast.jobs` for the state graph. Two indexes keep the hot paths cheap:
`ix_jobs_due` covers only unfinished rows, ordered by when they are next due, so
claiming reads a few index entries however many finished rows pile up; `ix_jobs_done`
does the same for pruning; the unique `key` makes enqueueing with a dedupe key one
indexed insert.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from holdfast.db.base import Base, utcnow


class JobState(StrEnum):
    queued = "queued"  # waiting for its next_attempt_at
    running = "running"  # claimed by a worker until locked_until
    retrying = "retrying"  # failed, waiting for its backoff to pass
    done = "done"
    dead = "dead"  # gave up: failed max_attempts times, or failed permanently


# States a worker may still pick up (running only once its lock has lapsed).
UNFINISHED = (JobState.queued, JobState.running, JobState.retrying)
_UNFINISHED_SQL = "state IN ('queued', 'running', 'retrying')"
_DONE_SQL = "state = 'done'"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # For a running job next_attempt_at equals locked_until, so "due" is one
        # range scan whether the job is new, backing off, or held by a dead worker.
        Index(
            "ix_jobs_due",
            "next_attempt_at",
            "id",
            sqlite_where=text(_UNFINISHED_SQL),
            postgresql_where=text(_UNFINISHED_SQL),
        ),
        # For pruning old done jobs; partial so it never tempts the claim query.
        Index(
            "ix_jobs_done",
            "finished_at",
            sqlite_where=text(_DONE_SQL),
            postgresql_where=text(_DONE_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Unique when set: enqueueing the same key again returns the existing job.
    key: Mapped[str | None] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.queued.value)
    # Runs started since the job last succeeded or was rescheduled by its handler.
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.state} attempt {self.attempts}>"
