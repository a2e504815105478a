"""Worker threads that claim and run jobs: inside `holdfast serve` or `holdfast worker`.

Every database call and every handler runs in the runner's own threads, never on an
asyncio event loop. `start()` only spawns threads, so it is safe to call from async
code; `stop()` blocks while jobs finish, so async code calls it through a thread, as
`background_jobs()` does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from holdfast.db.base import utcnow
from holdfast.jobs.engine import (
    ClaimedJob,
    claim,
    complete,
    extend_lock,
    fail,
    next_due,
    register_wakeup,
    release,
    schedule_periodic,
    when,
)
from holdfast.jobs.kinds import (
    JobContext,
    JobFailed,
    JobKind,
    JobRegistry,
    RetryLater,
    default_registry,
    load_job_modules,
)

if TYPE_CHECKING:
    from holdfast.db import Database
    from holdfast.settings import Settings

log = logging.getLogger("holdfast.jobs")


def default_worker_name() -> str:
    return f"{socket.gethostname()[:64]}:{os.getpid()}"


@dataclass(frozen=True)
class _Outcome:
    error: str | None = None  # None: the run succeeded
    again_at: datetime | None = None  # success: run again then; failure: retry then
    permanent: bool = False


class JobRunner:
    """N threads that each claim one job at a time, run it and record the outcome."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        threads: int = 2,
        registry: JobRegistry = default_registry,
        poll_seconds: float = 1.0,
        name: str | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("a job runner needs at least one thread")
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self.db = db
        self.settings = settings
        self.threads = threads
        self.registry = registry
        self.poll_seconds = poll_seconds
        self.name = name or default_worker_name()
        self.executed = 0  # runs finished by this runner, for logs and tests
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._current: dict[str, ClaimedJob] = {}
        self._periodic_scheduled = False
        self._schedule_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- life cycle

    def start(self, *, once: bool = False) -> None:
        """Start the threads and return. With `once`, each thread ends when nothing is due."""
        if self._threads:
            raise RuntimeError("this job runner was already started")
        register_wakeup(self._wakeup)
        for index in range(self.threads):
            thread = threading.Thread(
                target=self._work,
                args=(index, once),
                name=f"holdfast-jobs-{index}",
                # A handler stuck past shutdown must not keep the process alive;
                # its job was released and will run again elsewhere.
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        log.info(
            "job runner %s started: %d thread(s), kinds: %s",
            self.name,
            self.threads,
            ", ".join(self.registry.names()) or "none",
        )

    def is_alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 30.0, *, interrupt: threading.Event | None = None) -> list[int]:
        """Stop claiming, let running jobs finish for up to `timeout` seconds (or until
        `interrupt` is set), then release the jobs still running so that another
        worker runs them again. Returns the ids of the released jobs.
        """
        self._stopping.set()
        self._wakeup.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline:
                if interrupt is not None and interrupt.is_set():
                    break
                thread.join(0.1)
        with self._lock:
            held = list(self._current.values())
        released = []
        for claimed in held:
            try:
                if release(self.db, claimed):
                    released.append(claimed.id)
                    log.warning("released job %s (%s) unfinished", claimed.id, claimed.kind)
            except Exception:
                log.exception(
                    "could not release job %s; it runs again after its lock expires", claimed.id
                )
        return released

    def run_once(self) -> int:
        """Run due jobs in the calling thread until none is due; returns how many ran."""
        before = self.executed
        self._work(0, once=True)
        return self.executed - before

    # --- the loop of one thread

    def _work(self, index: int, once: bool) -> None:
        worker = f"{self.name}:{index}"
        # After a run, claim again at once; only an idle thread first checks with a
        # read (no write lock) whether anything is due and how long it may sleep.
        busy = False
        while not self._stopping.is_set():
            wait = self.poll_seconds
            try:
                self._schedule_periodic()
                if not busy:
                    kinds = self.registry.names()
                    due = next_due(self.db, kinds) if kinds else None
                    now = utcnow()
                    if due is None or due > now:
                        if once:
                            return
                        if due is not None:
                            wait = min(wait, max((due - now).total_seconds(), 0.01))
                        self._sleep(wait)
                        continue
                claimed = claim(
                    self.db,
                    worker,
                    self.registry,
                    default_lock_seconds=self.settings.job_lock_seconds,
                )
                if claimed is not None:
                    busy = True
                    self._run(claimed)
                    continue
                if busy:  # drained: look again before sleeping
                    busy = False
                    continue
                if once:
                    return
            except Exception:
                # The database may be restarting: keep the worker alive and try again.
                log.exception("job runner %s: error while looking for work", worker)
                busy = False
                if once:
                    return
            self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        """Sleep until new work is committed here, stop() is called, or time is up."""
        self._wakeup.wait(seconds)
        if not self._stopping.is_set():  # once stopping, every later wait returns at once
            self._wakeup.clear()

    def _schedule_periodic(self) -> None:
        if self._periodic_scheduled:
            return
        with self._schedule_lock:
            if self._periodic_scheduled:
                return
            with self.db.write() as session:
                schedule_periodic(session, self.registry)
            self._periodic_scheduled = True

    def _run(self, claimed: ClaimedJob) -> None:
        kind = self.registry.get(claimed.kind)
        lock_seconds = kind.lock_seconds or self.settings.job_lock_seconds

        def extend(seconds: float | None) -> bool:
            return extend_lock(self.db, claimed, seconds or lock_seconds)

        ctx = JobContext(
            db=self.db,
            settings=self.settings,
            job_id=claimed.id,
            kind=claimed.kind,
            attempt=claimed.attempt,
            worker=claimed.worker,
            stopping=self._stopping,
            _extend=extend,
        )
        with self._lock:
            self._current[claimed.worker] = claimed
        try:
            outcome = _execute(kind, ctx, claimed)
        except BaseException:
            # The thread itself is being torn down: hand the job back first.
            release(self.db, claimed)
            raise
        finally:
            with self._lock:
                self._current.pop(claimed.worker, None)
                self.executed += 1
        try:
            if outcome.error is None:
                complete(self.db, claimed, kind, again_at=outcome.again_at)
            else:
                fail(
                    self.db,
                    claimed,
                    kind,
                    outcome.error,
                    retry_at=outcome.again_at,
                    permanent=outcome.permanent,
                )
        except Exception:
            log.exception(
                "could not record the outcome of job %s; it runs again after its lock expires",
                claimed.id,
            )


def _execute(kind: JobKind, ctx: JobContext, claimed: ClaimedJob) -> _Outcome:
    """Run the handler and turn whatever it does into an outcome."""
    log.debug("running job %s (%s), attempt %d", claimed.id, claimed.kind, claimed.attempt)
    try:
        result = kind.handler(ctx, dict(claimed.payload))
        again_at = None if result is None else when(result, utcnow())
    except RetryLater as exc:
        try:
            retry_at: datetime | None = when(exc.after, utcnow())
        except Exception:
            retry_at = None
        return _Outcome(error=f"RetryLater: {exc}", again_at=retry_at)
    except JobFailed as exc:
        return _Outcome(error=f"JobFailed: {exc}", permanent=True)
    except Exception:
        log.warning(
            "job %s (%s) failed on attempt %d",
            claimed.id,
            claimed.kind,
            claimed.attempt,
            exc_info=True,
        )
        return _Outcome(error=traceback.format_exc())
    return _Outcome(again_at=again_at)


@asynccontextmanager
async def background_jobs(
    db: Database,
    settings: Settings,
    *,
    threads: int = 2,
    modules: Iterable[str] = (),
    registry: JobRegistry = default_registry,
    grace_seconds: float = 10.0,
) -> AsyncIterator[JobRunner | None]:
    """Run jobs in this process for the duration of the block (an app's lifespan).

    Does nothing (yields None) when `settings.run_jobs` is off, i.e. when separate
    `holdfast worker` processes do the work.
    """
    if not settings.run_jobs:
        yield None
        return
    await asyncio.to_thread(load_job_modules, tuple(modules))
    runner = JobRunner(db, settings, threads=threads, registry=registry)
    runner.start()
    try:
        yield runner
    finally:
        await asyncio.to_thread(runner.stop, grace_seconds)
