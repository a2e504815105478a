"""The runner: handlers' outcomes, concurrent workers, shutdown, in-process use."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.jobs import (
    Job,
    JobContext,
    JobFailed,
    JobRegistry,
    JobRunner,
    JobState,
    RetryLater,
    background_jobs,
    enqueue,
)
from holdfast.settings import Settings


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def add(db: Database, registry: JobRegistry, kind: str, payload: dict[str, Any]) -> int:
    with db.write() as session:
        return enqueue(session, kind, payload, registry=registry)


def rows(db: Database) -> dict[int, Job]:
    with db.read() as session:
        return {job.id: job for job in session.scalars(select(Job))}


def test_handler_outcomes_are_recorded(db: Database, settings: Settings) -> None:
    reg = JobRegistry()
    seen: list[tuple[str, dict[str, Any], int]] = []

    @reg.job("test.ok")
    def ok(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append((ctx.kind, payload, ctx.attempt))

    @reg.job("test.crash", retry_base_seconds=100, retry_cap_seconds=100)
    def crash(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise ValueError("tracker answered garbage")

    @reg.job("test.later")
    def later(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RetryLater("peer said 429", after=timedelta(minutes=5))

    @reg.job("test.hopeless")
    def hopeless(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise JobFailed("upload was removed")

    @reg.job("test.poll")
    def poll(ctx: JobContext, payload: dict[str, Any]) -> timedelta:
        return timedelta(hours=1)

    @reg.job("test.wrong_return")
    def wrong_return(ctx: JobContext, payload: dict[str, Any]) -> Any:
        return "soon"

    ids = {kind: add(db, reg, kind, {"kind": kind}) for kind in reg.names()}
    before = utcnow()
    runner = JobRunner(db, settings, threads=1, registry=reg)
    assert runner.run_once() == 6
    after = utcnow()
    got = rows(db)

    assert seen == [("test.ok", {"kind": "test.ok"}, 1)]
    assert got[ids["test.ok"]].state == JobState.done

    crashed = got[ids["test.crash"]]
    assert (crashed.state, crashed.attempts) == ("retrying", 1)
    assert "ValueError: tracker answered garbage" in (crashed.last_error or "")
    assert "Traceback" in (crashed.last_error or "")
    assert (
        before + timedelta(seconds=50) <= crashed.next_attempt_at <= after + timedelta(seconds=100)
    )

    retried = got[ids["test.later"]]
    assert retried.state == JobState.retrying
    assert retried.last_error == "RetryLater: peer said 429"
    assert before + timedelta(minutes=5) <= retried.next_attempt_at <= after + timedelta(minutes=5)

    dead = got[ids["test.hopeless"]]
    assert (dead.state, dead.last_error) == ("dead", "JobFailed: upload was removed")

    polled = got[ids["test.poll"]]
    assert (polled.state, polled.attempts) == ("queued", 0)
    assert polled.next_attempt_at >= before + timedelta(hours=1)

    wrong = got[ids["test.wrong_return"]]
    assert wrong.state == JobState.retrying
    assert "cannot schedule" in (wrong.last_error or "")


def test_two_workers_never_run_the_same_job_twice(migrated_url: str, settings: Settings) -> None:
    """Two runners with separate engines, as two processes would have, race for 120 jobs."""
    reg = JobRegistry()
    runs: Counter[int] = Counter()
    workers: set[str] = set()
    lock = threading.Lock()

    @reg.job("test.count")
    def count(ctx: JobContext, payload: dict[str, Any]) -> None:
        with lock:
            runs[payload["n"]] += 1
            workers.add(ctx.worker.rsplit(":", 1)[0])
        time.sleep(0.01)

    db_a, db_b = Database(migrated_url), Database(migrated_url)
    try:
        with db_a.write() as session:
            for n in range(120):
                enqueue(session, "test.count", {"n": n}, registry=reg)
        runners = [
            JobRunner(db, settings, threads=3, registry=reg, name=name, poll_seconds=0.2)
            for db, name in ((db_a, "a"), (db_b, "b"))
        ]
        for runner in runners:
            runner.start()
        try:
            wait_for(lambda: all(j.state == JobState.done for j in rows(db_a).values()), 60)
        finally:
            for runner in runners:
                runner.stop(10)
    finally:
        db_a.dispose()
        db_b.dispose()
    assert sorted(runs) == list(range(120))
    assert set(runs.values()) == {1}
    assert workers == {"a", "b"}
    assert sum(r.executed for r in runners) == 120


def test_stop_releases_a_stuck_job_and_discards_its_late_result(
    db: Database, settings: Settings
) -> None:
    reg = JobRegistry()
    started = threading.Event()
    unblock = threading.Event()
    calls: list[int] = []

    @reg.job("test.stuck")
    def stuck(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        if len(calls) == 1:
            started.set()
            unblock.wait(30)

    job_id = add(db, reg, "test.stuck", {})
    runner = JobRunner(db, settings, threads=1, registry=reg, poll_seconds=0.1)
    runner.start()
    assert started.wait(30)
    assert runner.stop(0.2) == [job_id]
    row = rows(db)[job_id]
    assert (row.state, row.attempts, row.locked_by) == ("queued", 0, None)

    unblock.set()  # the old thread finishes now; its success must not count
    wait_for(lambda: not runner.is_alive(), 10)
    assert rows(db)[job_id].state == JobState.queued

    assert JobRunner(db, settings, threads=1, registry=reg).run_once() == 1
    assert calls == [1, 1]  # the released run did not use up an attempt
    assert rows(db)[job_id].state == JobState.done


def test_a_handler_can_extend_its_lock_and_see_shutdown(db: Database, settings: Settings) -> None:
    reg = JobRegistry()
    seen: dict[str, Any] = {}

    @reg.job("test.long", lock_seconds=5)
    def long(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen["extended"] = ctx.extend_lock(3600)
        with ctx.db.read() as session:
            job = session.get(Job, ctx.job_id)
            assert job is not None
            seen["held_for"] = (job.locked_until - utcnow()).total_seconds()
        seen["stopping"] = ctx.stopping.is_set()

    add(db, reg, "test.long", {})
    JobRunner(db, settings, threads=1, registry=reg).run_once()
    assert seen["extended"] is True
    assert 3500 < seen["held_for"] <= 3600
    assert seen["stopping"] is False


def test_runner_schedules_and_runs_periodic_jobs(db: Database, settings: Settings) -> None:
    reg = JobRegistry()
    runs: list[dict[str, Any]] = []

    @reg.periodic("test.every_hour", every=timedelta(hours=1), payload={"scope": "all"})
    def every_hour(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(payload)

    runner = JobRunner(db, settings, threads=1, registry=reg)
    assert runner.run_once() == 1
    assert runs == [{"scope": "all"}]
    (row,) = rows(db).values()
    assert (row.key, row.state) == ("periodic:test.every_hour", "queued")
    assert row.next_attempt_at > utcnow() + timedelta(minutes=59)
    # A second worker starting up neither duplicates nor runs it early.
    assert JobRunner(db, settings, threads=1, registry=reg).run_once() == 0
    assert len(rows(db)) == 1


def test_committed_jobs_wake_an_idle_runner(db: Database, settings: Settings) -> None:
    reg = JobRegistry()
    done = threading.Event()

    @reg.job("test.ping")
    def ping(ctx: JobContext, payload: dict[str, Any]) -> None:
        done.set()

    # Polling once a minute: only the wake-up on commit can make this quick.
    runner = JobRunner(db, settings, threads=1, registry=reg, poll_seconds=60)
    runner.start()
    try:
        time.sleep(0.3)  # let it go idle
        add(db, reg, "test.ping", {})
        assert done.wait(20)
    finally:
        runner.stop(5)


def test_background_jobs_run_off_the_event_loop(db: Database, settings: Settings) -> None:
    reg = JobRegistry()
    threads: list[int] = []
    done = threading.Event()

    @reg.job("test.where")
    def where(ctx: JobContext, payload: dict[str, Any]) -> None:
        threads.append(threading.get_ident())
        done.set()

    async def lifespan() -> tuple[int, bool]:
        async with background_jobs(db, settings, threads=1, registry=reg) as runner:
            assert runner is not None
            await asyncio.to_thread(add, db, reg, "test.where", {})
            assert await asyncio.to_thread(done.wait, 20)
        return threading.get_ident(), runner.is_alive()

    loop_thread, alive_after = asyncio.run(lifespan())
    assert threads and threads[0] != loop_thread
    assert alive_after is False


def test_background_jobs_do_nothing_when_workers_run_elsewhere(
    db: Database, settings: Settings
) -> None:
    reg = JobRegistry()
    reg.job("test.never")(lambda ctx, payload: None)
    job_id = add(db, reg, "test.never", {})

    async def lifespan() -> object:
        async with background_jobs(
            db, settings.model_copy(update={"run_jobs": False}), registry=reg
        ) as runner:
            await asyncio.sleep(0.3)
            return runner

    assert asyncio.run(lifespan()) is None
    assert rows(db)[job_id].state == JobState.queued


@pytest.mark.parametrize("threads", [0, -1])
def test_a_runner_needs_threads(db: Database, settings: Settings, threads: int) -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        JobRunner(db, settings, threads=threads)
