"""State changes of jobs, on SQLite and PostgreSQL, with time passed in explicitly."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.errors import Conflict, NotFound
from holdfast.jobs import (
    InvalidJob,
    Job,
    JobContext,
    JobRegistry,
    JobState,
    UnknownJobKind,
    enqueue,
    enqueue_many,
    requeue,
)
from holdfast.jobs.engine import (
    backoff_seconds,
    claim,
    complete,
    extend_lock,
    fail,
    prune_done,
    release,
    schedule_periodic,
)

LOCK = 60.0
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


@pytest.fixture
def registry() -> JobRegistry:
    reg = JobRegistry()
    reg.job("test.work", max_attempts=3, retry_base_seconds=10, retry_cap_seconds=100)(noop)
    return reg


def get(db: Database, job_id: int) -> Job:
    with db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def count_jobs(db: Database) -> int:
    with db.read() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


def add(db: Database, registry: JobRegistry, kind: str = "test.work", **kw: Any) -> int:
    kw.setdefault("run_at", T0)
    with db.write() as session:
        return enqueue(session, kind, kw.pop("payload", {"n": 1}), registry=registry, **kw)


def take(db: Database, registry: JobRegistry, now: datetime, worker: str = "w1"):
    return claim(db, worker, registry, default_lock_seconds=LOCK, now=now)


# --- enqueue


def test_enqueue_then_claim_then_complete(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry, payload={"upload_id": 7, "names": ["a", "b"]})
    assert take(db, registry, T0 - timedelta(seconds=1)) is None  # not due yet
    claimed = take(db, registry, T0)
    assert claimed is not None
    assert (claimed.id, claimed.attempt, claimed.payload) == (
        job_id,
        1,
        {"upload_id": 7, "names": ["a", "b"]},
    )
    row = get(db, job_id)
    assert row.state == JobState.running
    assert row.locked_by == "w1"
    assert row.locked_until == T0 + timedelta(seconds=LOCK)
    assert take(db, registry, T0, worker="w2") is None  # held
    assert complete(db, claimed, registry.get("test.work"), now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.locked_by, row.finished_at) == ("done", 1, None, T0)
    assert take(db, registry, T0 + timedelta(days=1)) is None


def test_enqueue_is_rolled_back_with_its_transaction(db: Database, registry: JobRegistry) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.write() as session:
        enqueue(session, "test.work", {"n": 1}, registry=registry)
        enqueue(session, "test.work", {"n": 2}, key="k", registry=registry)
        raise Boom
    assert count_jobs(db) == 0
    # The key was never taken: the same key enqueues a new job.
    with db.write() as session:
        enqueue(session, "test.work", {"n": 3}, key="k", registry=registry)
    assert count_jobs(db) == 1


def test_enqueue_with_a_key_is_idempotent(db: Database, registry: JobRegistry) -> None:
    first = add(db, registry, key="deliver:1:https://peer/inbox", payload={"n": 1})
    again = add(db, registry, key="deliver:1:https://peer/inbox", payload={"n": 2})
    other = add(db, registry, key="deliver:1:https://other/inbox", payload={"n": 3})
    assert first == again != other
    assert count_jobs(db) == 2
    assert get(db, first).payload == {"n": 1}  # the first enqueue wins

    claimed = take(db, registry, T0)
    assert claimed is not None and claimed.id == first
    # While it runs, and after it is done, the key still returns the same job.
    assert add(db, registry, key="deliver:1:https://peer/inbox") == first
    complete(db, claimed, registry.get("test.work"), now=T0)
    assert add(db, registry, key="deliver:1:https://peer/inbox", payload={"n": 4}) == first
    row = get(db, first)
    assert (row.state, row.payload) == ("done", {"n": 1})

    # rerun_finished queues a finished keyed job again, with the new payload.
    rerun = add(
        db, registry, key="deliver:1:https://peer/inbox", payload={"n": 5}, rerun_finished=True
    )
    assert rerun == first
    row = get(db, first)
    assert (row.state, row.attempts, row.payload, row.finished_at) == ("queued", 0, {"n": 5}, None)
    assert count_jobs(db) == 2


def test_enqueue_many_adds_new_keys_once_and_leaves_existing_ones(
    db: Database, registry: JobRegistry
) -> None:
    known = add(db, registry, key="inbox:a", payload={"n": 1})
    with db.write() as session:
        enqueue_many(
            session,
            "test.work",
            [
                ({"n": 2}, "inbox:a"),  # exists: left as it is
                ({"n": 3}, "inbox:b"),
                ({"n": 4}, "inbox:b"),  # twice in one call: the first wins
                ({"n": 5}, None),
                ({"n": 6}, None),
            ],
            registry=registry,
        )
    with db.read() as session:
        rows = {(j.key, j.payload["n"], j.state) for j in session.scalars(select(Job))}
    assert rows == {
        ("inbox:a", 1, "queued"),
        ("inbox:b", 3, "queued"),
        (None, 5, "queued"),
        (None, 6, "queued"),
    }
    assert get(db, known).payload == {"n": 1}
    claimed = take(db, registry, utcnow() + timedelta(seconds=1))
    assert claimed is not None and claimed.kind == "test.work"


def test_enqueue_many_with_one_bad_job_adds_none(db: Database, registry: JobRegistry) -> None:
    with db.write() as session:
        with pytest.raises(InvalidJob):
            enqueue_many(
                session,
                "test.work",
                [({"n": 1}, "inbox:ok"), ({"x": math.nan}, "inbox:bad")],
                registry=registry,
            )
        enqueue_many(session, "test.work", [], registry=registry)
    assert count_jobs(db) == 0


def test_rerun_finished_leaves_unfinished_jobs_alone(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry, key="backfill:peer", payload={"n": 1})
    assert add(db, registry, key="backfill:peer", payload={"n": 2}, rerun_finished=True) == job_id
    assert get(db, job_id).payload == {"n": 1}


@pytest.mark.parametrize(
    ("kind", "payload", "kwargs", "error"),
    [
        ("test.missing", {}, {}, UnknownJobKind),
        ("test.work", {"x": object()}, {}, InvalidJob),
        ("test.work", {"x": math.nan}, {}, InvalidJob),
        ("test.work", ["not", "a", "mapping"], {}, InvalidJob),
        ("test.work", {}, {"key": ""}, InvalidJob),
        ("test.work", {}, {"key": "k" * 256}, InvalidJob),
        ("test.work", {}, {"run_at": datetime(2030, 1, 1)}, InvalidJob),  # naive
        ("test.work", {}, {"run_at": "tomorrow"}, InvalidJob),
        ("test.work", {}, {"max_attempts": 0}, InvalidJob),
    ],
)
def test_bad_enqueue_is_refused_and_changes_nothing(
    db: Database, registry: JobRegistry, kind: str, payload: Any, kwargs: Any, error: type
) -> None:
    with db.write() as session:
        with pytest.raises(error):
            enqueue(session, kind, payload, registry=registry, **kwargs)
        # The caller's transaction is still usable and commits nothing from the refusal.
        enqueue(session, "test.work", {"ok": True}, registry=registry)
    with db.read() as session:
        assert [j.payload for j in session.scalars(select(Job))] == [{"ok": True}]


def test_bad_declarations_are_refused() -> None:
    reg = JobRegistry()
    for name in ("", "Upper.case", "has space", "trailing.", "x" * 65, "1starts.with.digit"):
        with pytest.raises(InvalidJob):
            reg.job(name)(noop)
    with pytest.raises(InvalidJob):
        reg.job("test.a", max_attempts=0)(noop)
    with pytest.raises(InvalidJob):
        reg.job("test.a", retry_base_seconds=10, retry_cap_seconds=5)(noop)
    with pytest.raises(InvalidJob):
        reg.periodic("test.a", every=timedelta(0))(noop)
    reg.job("test.a")(noop)

    def other(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    with pytest.raises(InvalidJob, match="already registered"):
        reg.job("test.a")(other)
    assert reg.names() == ["test.a"]


# --- retries, backoff, dead letter


def test_failure_retries_with_backoff_then_dies_keeping_the_error(
    db: Database, registry: JobRegistry
) -> None:
    kind = registry.get("test.work")  # max_attempts=3, base 10 s, cap 100 s
    job_id = add(db, registry)
    now = T0
    for attempt in (1, 2):
        claimed = take(db, registry, now)
        assert claimed is not None and claimed.attempt == attempt
        assert fail(db, claimed, kind, f"ConnectionError: attempt {attempt}", now=now)
        row = get(db, job_id)
        assert row.state == JobState.retrying
        assert row.locked_by is None
        delay = (row.next_attempt_at - now).total_seconds()
        step = 10 * 2 ** (attempt - 1)
        assert step / 2 <= delay <= step
        assert take(db, registry, now + timedelta(seconds=delay - 0.5)) is None  # backing off
        now = row.next_attempt_at
    claimed = take(db, registry, now)
    assert claimed is not None and claimed.attempt == 3
    assert fail(db, claimed, kind, "ConnectionError: attempt 3", now=now)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.finished_at) == ("dead", 3, now)
    assert row.last_error == "ConnectionError: attempt 3"
    assert take(db, registry, now + timedelta(days=365)) is None


def test_backoff_grows_is_capped_and_jittered(registry: JobRegistry) -> None:
    kind = registry.get("test.work")  # base 10, cap 100
    for attempt, step in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (30, 100)]:
        samples = [backoff_seconds(kind, attempt) for _ in range(200)]
        assert all(step / 2 <= s <= step for s in samples)
        assert len(set(samples)) > 100  # jittered, not one fixed delay


def test_permanent_failure_dies_at_once(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)
    claimed = take(db, registry, T0)
    assert claimed is not None
    fail(db, claimed, registry.get("test.work"), "JobFailed: torrent is gone", permanent=True)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.last_error) == ("dead", 1, "JobFailed: torrent is gone")


def test_retry_at_a_chosen_time_counts_as_an_attempt(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)
    claimed = take(db, registry, T0)
    assert claimed is not None
    later = T0 + timedelta(minutes=17)
    fail(db, claimed, registry.get("test.work"), "RetryLater: 429", retry_at=later, now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("retrying", 1, later)


def test_running_again_later_is_not_a_failure(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)
    for _ in range(5):  # more than max_attempts: polls never exhaust the job
        claimed = take(db, registry, T0)
        assert claimed is not None and claimed.attempt == 1
        assert complete(db, claimed, registry.get("test.work"), again_at=T0, now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("queued", 0, T0)


# --- locks


def test_an_expired_lock_is_taken_over_and_the_old_holder_is_ignored(
    db: Database, registry: JobRegistry
) -> None:
    kind = registry.get("test.work")
    job_id = add(db, registry)
    dead_worker = take(db, registry, T0, worker="dead:1")
    assert dead_worker is not None
    assert take(db, registry, T0 + timedelta(seconds=LOCK - 1), worker="w2") is None
    later = T0 + timedelta(seconds=LOCK + 1)
    taken = take(db, registry, later, worker="w2")
    assert taken is not None and (taken.id, taken.attempt) == (job_id, 2)
    row = get(db, job_id)
    assert row.locked_by == "w2"
    assert "dead:1" in (row.last_error or "")
    # The first worker wakes up: whatever it reports is discarded.
    assert not complete(db, dead_worker, kind, now=later)
    assert not fail(db, dead_worker, kind, "late", now=later)
    assert not release(db, dead_worker, now=later)
    assert not extend_lock(db, dead_worker, 600, now=later)
    assert get(db, job_id).locked_by == "w2"
    assert complete(db, taken, kind, now=later)
    assert get(db, job_id).state == JobState.done


def test_a_job_that_keeps_losing_its_worker_ends_dead(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)  # max_attempts=3
    now = T0
    for _ in range(3):
        assert take(db, registry, now) is not None
        now += timedelta(seconds=LOCK + 1)
    assert take(db, registry, now) is None
    row = get(db, job_id)
    assert (row.state, row.attempts) == ("dead", 3)
    assert "lost the job" in (row.last_error or "")


def test_extend_lock_keeps_the_job(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)
    claimed = take(db, registry, T0)
    assert claimed is not None
    assert extend_lock(db, claimed, 300, now=T0 + timedelta(seconds=50))
    assert take(db, registry, T0 + timedelta(seconds=LOCK + 1), worker="w2") is None
    assert take(db, registry, T0 + timedelta(seconds=351), worker="w2") is not None
    assert get(db, job_id).attempts == 2


def test_release_hands_a_job_back_without_counting_the_attempt(
    db: Database, registry: JobRegistry
) -> None:
    job_id = add(db, registry)
    claimed = take(db, registry, T0)
    assert claimed is not None
    assert release(db, claimed, now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.locked_by) == ("queued", 0, None)
    again = take(db, registry, T0, worker="w2")
    assert again is not None and again.attempt == 1


def test_workers_only_claim_kinds_they_know(db: Database, registry: JobRegistry) -> None:
    newer = JobRegistry()
    newer.job("test.newer_kind")(noop)
    newer_job = add(db, newer, kind="test.newer_kind")
    assert take(db, registry, T0) is None
    assert get(db, newer_job).state == JobState.queued
    assert take(db, newer, T0) is not None


def test_claims_go_to_the_job_due_first(db: Database, registry: JobRegistry) -> None:
    late = add(db, registry, run_at=T0 + timedelta(seconds=5))
    early = add(db, registry, run_at=T0 - timedelta(seconds=5))
    first = take(db, registry, T0 + timedelta(seconds=10))
    second = take(db, registry, T0 + timedelta(seconds=10))
    assert first is not None and second is not None
    assert (first.id, second.id) == (early, late)


def test_the_claim_query_can_use_the_due_index(db: Database) -> None:
    """The partial index must match the claim query's literal state filter."""
    from holdfast.jobs.engine import UNFINISHED

    query = (
        select(Job.id)
        .where(UNFINISHED, Job.next_attempt_at <= T0)
        .order_by(Job.next_attempt_at)
        .limit(1)
    )
    with db.read() as session:
        conn = session.connection()
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if db.is_postgres:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
        else:
            plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    assert any("ix_jobs_due" in line for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan  # no sort of all due rows


# --- periodic jobs, operators, housekeeping


@pytest.fixture
def periodic_registry() -> JobRegistry:
    reg = JobRegistry()
    reg.periodic("test.scrape_all", every=timedelta(minutes=30), payload={"all": True})(noop)
    return reg


def test_periodic_jobs_are_scheduled_once_however_often_workers_start(
    db: Database, periodic_registry: JobRegistry
) -> None:
    for _ in range(3):
        with db.write() as session:
            schedule_periodic(session, periodic_registry, now=T0)
    with db.read() as session:
        rows = session.scalars(select(Job)).all()
    assert [(r.kind, r.key, r.payload, r.state) for r in rows] == [
        ("test.scrape_all", "periodic:test.scrape_all", {"all": True}, "queued")
    ]
    assert rows[0].next_attempt_at == T0


def test_periodic_job_recurs_after_success_and_after_giving_up(
    db: Database, periodic_registry: JobRegistry
) -> None:
    kind = periodic_registry.get("test.scrape_all")  # max_attempts=3
    with db.write() as session:
        (job_id,) = schedule_periodic(session, periodic_registry, now=T0)
    claimed = take(db, periodic_registry, T0)
    assert claimed is not None
    complete(db, claimed, kind, now=T0 + timedelta(minutes=1))
    row = get(db, job_id)
    assert (row.state, row.next_attempt_at) == ("queued", T0 + timedelta(minutes=30))

    now = row.next_attempt_at
    claimed = take(db, periodic_registry, now)
    assert claimed is not None
    fail(db, claimed, kind, "tracker down", permanent=True, now=now)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.last_error) == ("queued", 0, "tracker down")
    assert row.next_attempt_at == now + timedelta(minutes=30)


def test_rescheduling_repairs_periodic_rows(db: Database, periodic_registry: JobRegistry) -> None:
    with db.write() as session:
        (job_id,) = schedule_periodic(session, periodic_registry, now=T0)
        row = session.get(Job, job_id)
        assert row is not None
        row.next_attempt_at = T0 + timedelta(days=3)  # an older, longer period
    with db.write() as session:
        schedule_periodic(session, periodic_registry, now=T0)
    assert get(db, job_id).next_attempt_at == T0 + timedelta(minutes=30)
    with db.write() as session:
        row = session.get(Job, job_id)
        assert row is not None
        row.state = JobState.dead.value  # left dead by older code
    with db.write() as session:
        schedule_periodic(session, periodic_registry, now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts) == ("queued", 0)


def test_requeue_runs_a_dead_job_again(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry)
    claimed = take(db, registry, T0)
    assert claimed is not None
    with db.write() as session, pytest.raises(Conflict):
        requeue(session, job_id)
    fail(db, claimed, registry.get("test.work"), "bad", permanent=True, now=T0)
    with db.write() as session:
        requeue(session, job_id, now=T0)
    row = get(db, job_id)
    assert (row.state, row.attempts, row.last_error) == ("queued", 0, "bad")
    with db.write() as session, pytest.raises(NotFound):
        requeue(session, job_id + 1000)


def test_prune_deletes_old_done_jobs_only(db: Database, registry: JobRegistry) -> None:
    kind = registry.get("test.work")
    ids = [add(db, registry) for _ in range(4)]
    for finish, permanent in [(T0, False), (T0, True), (T0 + timedelta(days=10), False)]:
        claimed = take(db, registry, T0)
        assert claimed is not None
        if permanent:
            fail(db, claimed, kind, "x", permanent=True, now=finish)
        else:
            complete(db, claimed, kind, now=finish)
    with db.write() as session:
        assert prune_done(session, older_than=T0 + timedelta(days=1)) == 1
    with db.read() as session:
        left = {j.id: j.state for j in session.scalars(select(Job))}
    assert left == {ids[1]: "dead", ids[2]: "done", ids[3]: "queued"}


def test_job_times_are_aware_utc(db: Database, registry: JobRegistry) -> None:
    job_id = add(db, registry, run_at=None)
    row = get(db, job_id)
    assert row.next_attempt_at.tzinfo is not None
    assert abs((row.next_attempt_at - utcnow()).total_seconds()) < 60
