"""The state changes of a job, each one short transaction.

`enqueue` runs inside the caller's write transaction; everything else here opens its
own. Every change a worker makes to a job it holds is conditional on still holding
it (same `locked_by` and attempt), so a worker whose lock lapsed and was taken over
can never overwrite the new holder's state: its result is discarded.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from holdfast.db.base import utcnow
from holdfast.errors import Conflict, NotFound
from holdfast.jobs.kinds import (
    InvalidJob,
    JobKind,
    JobRegistry,
    default_registry,
)
from holdfast.jobs.models import _DONE_SQL, _UNFINISHED_SQL, Job, JobState

if TYPE_CHECKING:
    from holdfast.db import Database

log = logging.getLogger("holdfast.jobs")

MAX_KEY_LENGTH = 255
MAX_ERROR_LENGTH = 8000
# Written literally (not as bound parameters) so both databases match it to the
# partial index ix_jobs_due.
UNFINISHED = text(_UNFINISHED_SQL)
DONE = text(_DONE_SQL)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: a detached snapshot, safe to pass between threads."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    worker: str
    started_at: datetime
    locked_until: datetime


# --- enqueueing


def enqueue(
    session: Session,
    kind: JobKind | str,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
    run_at: datetime | timedelta | None = None,
    max_attempts: int | None = None,
    rerun_finished: bool = False,
    registry: JobRegistry = default_registry,
) -> int:
    """Add a job in the caller's transaction and return its id.

    It becomes visible to workers when that transaction commits, and disappears
    with it if it rolls back. With a `key`, enqueueing is idempotent: if a job with
    that key exists, its id is returned and nothing changes, unless
    `rerun_finished` is set and that job is done or dead, in which case it is
    queued again with the new payload.
    """
    job_kind = kind if isinstance(kind, JobKind) else registry.get(kind)
    values = _job_values(job_kind, payload, key, run_at, max_attempts, utcnow())
    if key is None:
        job_id = session.execute(insert(Job).values(values).returning(Job.id)).scalar_one()
    else:
        job_id = _insert_keyed(session, values, rerun_finished=rerun_finished)
    _wake_local_runners_after_commit(session)
    return job_id


def enqueue_many(
    session: Session,
    kind: JobKind | str,
    jobs: list[tuple[Mapping[str, Any], str | None]],
    *,
    registry: JobRegistry = default_registry,
) -> None:
    """Add many jobs of one kind, (payload, key or None) each, in one statement of the
    caller's transaction. As with `enqueue`, a key that exists (also twice in `jobs`)
    leaves that job as it is; the ids are not returned."""
    if not jobs:
        return
    job_kind = kind if isinstance(kind, JobKind) else registry.get(kind)
    now = utcnow()
    rows = [_job_values(job_kind, payload, key, None, None, now) for payload, key in jobs]
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(Job)
    elif dialect == "sqlite":
        stmt = sqlite.insert(Job)
    else:  # pragma: no cover - holdfast runs on SQLite and PostgreSQL only
        raise InvalidJob(f"keyed jobs are not supported on {dialect}")
    session.execute(stmt.on_conflict_do_nothing(index_elements=[Job.key]), rows)
    _wake_local_runners_after_commit(session)


def _job_values(
    job_kind: JobKind,
    payload: Mapping[str, Any] | None,
    key: str | None,
    run_at: datetime | timedelta | None,
    max_attempts: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The row of a new job, its payload and key checked."""
    data = _checked_payload(payload)
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH):
        raise InvalidJob(f"a job key must be a string of 1 to {MAX_KEY_LENGTH} characters")
    attempts_allowed = job_kind.max_attempts if max_attempts is None else max_attempts
    if attempts_allowed < 1:
        raise InvalidJob("max_attempts must be at least 1")
    return {
        "kind": job_kind.name,
        "key": key,
        "payload": data,
        "state": JobState.queued.value,
        "attempts": 0,
        "max_attempts": attempts_allowed,
        "next_attempt_at": when(run_at, now),
        "created_at": now,
        "updated_at": now,
    }


def _insert_keyed(session: Session, values: dict[str, Any], *, rerun_finished: bool) -> int:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(Job).values(values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(Job).values(values)
    else:  # pragma: no cover - holdfast runs on SQLite and PostgreSQL only
        raise InvalidJob(f"keyed jobs are not supported on {dialect}")
    if rerun_finished:
        fresh = {
            name: stmt.excluded[name]
            for name in ("payload", "attempts", "max_attempts", "next_attempt_at", "updated_at")
        }
        fresh.update(
            state=JobState.queued.value,
            kind=stmt.excluded.kind,
            locked_by=None,
            locked_until=None,
            started_at=None,
            finished_at=None,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Job.key],
            set_=fresh,
            where=Job.state.in_([JobState.done.value, JobState.dead.value]),
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[Job.key])
    job_id = session.execute(stmt.returning(Job.id)).scalar_one_or_none()
    if job_id is None:  # the key exists and was left as it is
        job_id = session.execute(select(Job.id).where(Job.key == values["key"])).scalar_one()
    return int(job_id)


def _checked_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidJob("a job payload must be a mapping")
    try:
        # Round-trip so the worker sees exactly what the database will hold.
        data = json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"a job payload must be plain JSON: {exc}") from None
    return dict(data)


def when(at: datetime | timedelta | float | None, now: datetime) -> datetime:
    """An absolute, aware time from 'now', a delay, or an aware datetime."""
    if at is None:
        return now
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise InvalidJob("job times must be timezone-aware (use datetime.now(UTC))")
        return at.astimezone(UTC)
    if isinstance(at, timedelta):
        return now + at
    if isinstance(at, int | float) and not isinstance(at, bool):
        return now + timedelta(seconds=float(at))
    raise InvalidJob(f"cannot schedule a job at {at!r}")


# --- waking runners in this process as soon as new work is committed

_local_wakeups: weakref.WeakSet[threading.Event] = weakref.WeakSet()


def register_wakeup(wakeup: threading.Event) -> None:
    _local_wakeups.add(wakeup)


def wake_local_runners() -> None:
    """Wake this process's idle runners (and a server's job process) to claim now."""
    for wakeup in list(_local_wakeups):
        wakeup.set()


def _wake_local_runners(_session: Session) -> None:
    wake_local_runners()


def _wake_local_runners_after_commit(session: Session) -> None:
    if not event.contains(session, "after_commit", _wake_local_runners):
        event.listen(session, "after_commit", _wake_local_runners, once=True)


# --- claiming


def next_due(db: Database, kinds: list[str]) -> datetime | None:
    """When the earliest unfinished job of these kinds is due (a read, no lock)."""
    with db.read() as session:
        return session.execute(
            select(func.min(Job.next_attempt_at)).where(UNFINISHED, Job.kind.in_(kinds))
        ).scalar_one_or_none()


def claim(
    db: Database,
    worker: str,
    registry: JobRegistry,
    *,
    default_lock_seconds: float,
    now: datetime | None = None,
) -> ClaimedJob | None:
    """Take the job that is due first, among the kinds `registry` knows.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent workers each take a
    different row without waiting. SQLite: the write transaction starts with
    `BEGIN IMMEDIATE`, so claims from every thread and process run one at a time.
    A running job whose lock has lapsed is due again: its worker died or hung.
    """
    kinds = registry.names()
    if not kinds:
        return None
    now = now or utcnow()
    with db.write() as session:
        # Loop only to skip jobs that are buried here (held by workers that keep dying).
        while True:
            row = session.scalars(
                select(Job)
                .where(UNFINISHED, Job.next_attempt_at <= now, Job.kind.in_(kinds))
                .order_by(Job.next_attempt_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            kind = registry.get(row.kind)
            if row.state == JobState.running:
                lapsed = (
                    f"worker {row.locked_by} lost the job (its lock expired at "
                    f"{row.locked_until:%Y-%m-%d %H:%M:%S}Z) on attempt {row.attempts}"
                )
                log.warning("job %s (%s): %s", row.id, row.kind, lapsed)
                row.last_error = lapsed
                if row.attempts >= row.max_attempts:
                    _give_up(row, kind, now)
                    continue
            lock_seconds = kind.lock_seconds or default_lock_seconds
            locked_until = now + timedelta(seconds=lock_seconds)
            return _mark_running(row, worker, now, locked_until)


def claim_matching(
    db: Database,
    worker: str,
    kind: JobKind,
    *,
    field: str,
    value: str,
    limit: int,
    default_lock_seconds: float,
    now: datetime | None = None,
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs of `kind` whose payload's `field` is `value`, oldest
    first, in one write: a handler that applies several at once (each still finished
    on its own, by `complete_many`, `fail` or `release`).

    Only queued and retrying jobs are taken: a running one whose lock lapsed is left
    to `claim`, which decides whether it has attempts left. Each taken job counts an
    attempt, as `claim` does.
    """
    if limit < 1:
        return []
    now = now or utcnow()
    lock_seconds = kind.lock_seconds or default_lock_seconds
    locked_until = now + timedelta(seconds=lock_seconds)
    taken: list[ClaimedJob] = []
    with db.write() as session:
        rows = session.scalars(
            select(Job)
            .where(
                UNFINISHED,
                Job.next_attempt_at <= now,
                Job.kind == kind.name,
                Job.state != JobState.running.value,
                Job.payload[field].as_string() == value,
            )
            .order_by(Job.next_attempt_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            taken.append(_mark_running(row, worker, now, locked_until))
    return taken


# --- finishing (only by the worker that still holds the job)


def _held(session: Session, claimed: ClaimedJob) -> Job | None:
    return session.scalars(
        select(Job)
        .where(
            Job.id == claimed.id,
            Job.state == JobState.running.value,
            Job.locked_by == claimed.worker,
            Job.attempts == claimed.attempt,
        )
        .with_for_update()
    ).first()


def _unlock(row: Job, now: datetime) -> None:
    row.locked_by = None
    row.locked_until = None
    row.updated_at = now


def _next_period(row: Job, kind: JobKind, now: datetime) -> datetime:
    if kind.every is None:  # pragma: no cover - callers check
        raise ValueError("not a periodic kind")
    started = row.started_at or now
    return max(started + kind.every, now)


def _give_up(row: Job, kind: JobKind, now: datetime) -> None:
    """Dead-letter the job; a periodic job instead waits for its next period."""
    _unlock(row, now)
    row.finished_at = now
    if kind.every is not None:
        row.state = JobState.queued.value
        row.attempts = 0
        row.next_attempt_at = _next_period(row, kind, now)
    else:
        row.state = JobState.dead.value
    log.error("job %s (%s) gave up after %s attempt(s)", row.id, row.kind, row.attempts)


def complete(
    db: Database,
    claimed: ClaimedJob,
    kind: JobKind,
    *,
    again_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Record a successful run. False if the job was no longer ours (result discarded).

    `again_at` (a handler's return value) queues the job again at that time with its
    attempts reset: a poll that is not finished yet is not a failure.
    """
    now = now or utcnow()
    with db.write() as session:
        row = _held(session, claimed)
        if row is None:
            log.warning("job %s (%s): lock lost before it finished", claimed.id, claimed.kind)
            return False
        _unlock(row, now)
        row.last_error = None
        if again_at is None and kind.every is None:
            row.state = JobState.done.value
            row.finished_at = now
            return True
        row.state = JobState.queued.value
        row.attempts = 0
        row.next_attempt_at = again_at if again_at is not None else _next_period(row, kind, now)
        row.finished_at = now
        return True


def complete_many(
    db: Database, claimed: list[ClaimedJob], kind: JobKind, *, now: datetime | None = None
) -> list[int]:
    """`complete` for several held jobs of one non-periodic kind in one transaction;
    returns the ids recorded (a job no longer ours is left as it is)."""
    if kind.every is not None:
        raise ValueError("complete_many is for kinds that are not periodic")
    now = now or utcnow()
    done: list[int] = []
    if not claimed:
        return done
    with db.write() as session:
        rows = {
            row.id: row
            for row in session.scalars(
                select(Job)
                .where(Job.id.in_([c.id for c in claimed]), Job.state == JobState.running.value)
                .with_for_update()
            )
        }
        for c in claimed:
            row = rows.get(c.id)
            if row is None or row.locked_by != c.worker or row.attempts != c.attempt:
                log.warning("job %s (%s): lock lost before it finished", c.id, c.kind)
                continue
            _unlock(row, now)
            row.last_error = None
            row.state = JobState.done.value
            row.finished_at = now
            done.append(c.id)
    return done


def fail(
    db: Database,
    claimed: ClaimedJob,
    kind: JobKind,
    error: str,
    *,
    retry_at: datetime | None = None,
    permanent: bool = False,
    now: datetime | None = None,
) -> bool:
    """Record a failed run: retry after a backoff (or at `retry_at`), or give up.

    Gives up (dead, or the next period for periodic kinds) when `permanent` or when
    the job has used all its attempts. False if the job was no longer ours.
    """
    now = now or utcnow()
    with db.write() as session:
        row = _held(session, claimed)
        if row is None:
            log.warning("job %s (%s): lock lost before it failed", claimed.id, claimed.kind)
            return False
        row.last_error = error[-MAX_ERROR_LENGTH:]
        if permanent or row.attempts >= row.max_attempts:
            _give_up(row, kind, now)
            return True
        _unlock(row, now)
        row.state = JobState.retrying.value
        if retry_at is None:
            retry_at = now + timedelta(seconds=backoff_seconds(kind, row.attempts))
        row.next_attempt_at = retry_at
        return True


def release(db: Database, claimed: ClaimedJob, *, now: datetime | None = None) -> bool:
    """Give a held job back unfinished (shutdown): due now, the attempt not counted."""
    now = now or utcnow()
    with db.write() as session:
        row = _held(session, claimed)
        if row is None:
            return False
        _unlock(row, now)
        row.attempts -= 1
        row.state = (JobState.retrying if row.attempts else JobState.queued).value
        row.next_attempt_at = now
        return True


def extend_lock(
    db: Database, claimed: ClaimedJob, seconds: float, *, now: datetime | None = None
) -> bool:
    """Hold a job longer. False if it is no longer ours."""
    now = now or utcnow()
    until = now + timedelta(seconds=seconds)
    with db.write() as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == claimed.id,
                Job.state == JobState.running.value,
                Job.locked_by == claimed.worker,
                Job.attempts == claimed.attempt,
            )
            .values(locked_until=until, next_attempt_at=until, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def backoff_seconds(kind: JobKind, attempt: int) -> float:
    """Exponential backoff with jitter: about base * 2^(attempt-1), capped.

    The jitter (a random 50-100% of the step) spreads retries of jobs that failed
    together, e.g. every delivery to one peer that went down.
    """
    step = min(kind.retry_cap_seconds, kind.retry_base_seconds * 2 ** max(attempt - 1, 0))
    return step * random.uniform(0.5, 1.0)


# --- periodic jobs, operators, housekeeping


def schedule_periodic(
    session: Session, registry: JobRegistry, *, now: datetime | None = None
) -> list[int]:
    """Make sure every periodic kind has its one row; safe to run from every worker.

    A missing row is created due now; a finished one (left by older code) is queued
    again; one scheduled further away than its period (the period was shortened) is
    brought forward.
    """
    now = now or utcnow()
    ids = []
    for kind in registry:
        if kind.every is None:
            continue
        job_id = enqueue(
            session,
            kind,
            kind.payload,
            key=kind.periodic_key,
            run_at=now,
            rerun_finished=True,
            registry=registry,
        )
        row = session.get(Job, job_id, with_for_update=True, populate_existing=True)
        if row is not None and row.state in (JobState.queued, JobState.retrying):
            row.payload = dict(kind.payload)
            row.max_attempts = kind.max_attempts
            row.next_attempt_at = min(row.next_attempt_at, now + kind.every)
        ids.append(job_id)
    return ids


def requeue(session: Session, job_id: int, *, now: datetime | None = None) -> None:
    """Run a dead (or done) job again from its first attempt."""
    now = now or utcnow()
    row = session.get(Job, job_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no job {job_id}")
    if row.state not in (JobState.dead, JobState.done):
        raise Conflict(f"job {job_id} is {row.state}; only finished jobs can be queued again")
    row.state = JobState.queued.value
    row.attempts = 0
    row.next_attempt_at = now
    row.finished_at = None
    row.updated_at = now


def prune_done(session: Session, *, older_than: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` done jobs finished before `older_than`. Dead ones stay.

    A deleted job's key is free again, so keyed enqueues dedupe within this window.
    """
    ids = (
        select(Job.id)
        .where(DONE, Job.finished_at < older_than)
        .order_by(Job.finished_at)
        .limit(limit)
    )
    result = session.execute(delete(Job).where(Job.id.in_(ids)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _mark_running(row: Job, worker: str, now: datetime, locked_until: datetime) -> ClaimedJob:
    """Take `row` for `worker` until `locked_until` (one more attempt)."""
    row.state = JobState.running.value
    row.attempts += 1
    row.locked_by = worker
    row.locked_until = locked_until
    row.next_attempt_at = locked_until
    row.started_at = now
    row.updated_at = now
    return ClaimedJob(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload),
        attempt=row.attempts,
        max_attempts=row.max_attempts,
        worker=worker,
        started_at=now,
        locked_until=locked_until,
    )
