"""Job kinds: the named handlers a worker knows how to run.

An area declares its kinds once, at import time, in its own `jobs` module::

    from holdfast.jobs import JobContext, job, periodic

    @job("swarm.scrape", max_attempts=8)
    def scrape(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    @periodic("swarm.scrape_all", every=timedelta(minutes=30))
    def scrape_all(ctx: JobContext, payload: dict[str, Any]) -> None: ...

and lists that module in `JOB_MODULES` below, so servers and `holdfast worker`
processes import it. A worker only claims kinds it has loaded, so a process running
older code never takes (and fails) work it cannot do.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from holdfast.db import Database
    from holdfast.settings import Settings

# Modules that declare job kinds; a module absent from this build is skipped.
JOB_MODULES: tuple[str, ...] = (
    "holdfast.jobs.maintenance",
    "holdfast.catalogue.jobs",
    "holdfast.swarm.jobs",
    "holdfast.federation.jobs",
    "holdfast.seeding.jobs",
)

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_KIND_LENGTH = 64


class JobError(Exception):
    """A job cannot be declared or enqueued as asked.

    JobError
    ├── UnknownJobKind      no handler is registered under that name
    └── InvalidJob          bad kind name, payload, key, time or limits
    """


class UnknownJobKind(JobError):
    pass


class InvalidJob(JobError):
    pass


class RetryLater(Exception):
    """Raised by a handler: this attempt failed, try again after `after`.

    `after` is seconds, a timedelta, or an aware datetime. It counts as a failed
    attempt (so it still ends in `dead` after max_attempts) but replaces the
    exponential backoff, e.g. to honour a peer's Retry-After.
    """

    def __init__(
        self, message: str = "retry later", *, after: float | timedelta | datetime
    ) -> None:
        super().__init__(message)
        self.after = after


class JobFailed(Exception):
    """Raised by a handler: this job can never succeed; move it to `dead` now."""


@dataclass
class JobContext:
    """What a handler gets besides its payload."""

    db: Database
    settings: Settings
    job_id: int
    kind: str
    attempt: int  # 1 for the first run, 2 for the first retry, ...
    worker: str
    # Set when the worker is shutting down: long handlers may stop early (by
    # raising RetryLater) instead of being released half-way.
    stopping: threading.Event
    _extend: Callable[[float | None], bool] = field(repr=False)

    def extend_lock(self, seconds: float | None = None) -> bool:
        """Hold the job for `seconds` more (default: the kind's lock time).

        Returns False when the lock was already lost (another worker took the job);
        the handler should then stop, since its result will be discarded.
        """
        return self._extend(seconds)


# What a handler may return: None when done, or when to run it again (a poll that
# is not finished yet). Running again is not a failure: attempts start over.
JobResult = datetime | timedelta | None
Handler = Callable[[JobContext, dict[str, Any]], JobResult]


@dataclass(frozen=True, eq=False)
class JobKind:
    name: str
    handler: Handler
    max_attempts: int = 5
    lock_seconds: float | None = None  # None: the instance's job_lock_seconds
    retry_base_seconds: float = 10.0
    retry_cap_seconds: float = 3600.0
    every: timedelta | None = None  # set for periodic kinds
    payload: dict[str, Any] = field(default_factory=dict)  # periodic kinds' payload

    @property
    def periodic_key(self) -> str:
        return f"periodic:{self.name}"

    def __call__(self, ctx: JobContext, payload: dict[str, Any]) -> JobResult:
        return self.handler(ctx, payload)


def check_kind_name(name: str) -> None:
    if len(name) > MAX_KIND_LENGTH or not KIND_PATTERN.match(name):
        raise InvalidJob(
            f"job kind {name!r} must be dotted lowercase words (a-z, 0-9, _), "
            f"at most {MAX_KIND_LENGTH} characters"
        )


class JobRegistry:
    """Maps kind names to JobKinds. Most code uses the default one via `job`/`periodic`."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._lock = threading.Lock()

    def register(self, kind: JobKind) -> JobKind:
        check_kind_name(kind.name)
        if kind.max_attempts < 1:
            raise InvalidJob(f"{kind.name}: max_attempts must be at least 1")
        if kind.lock_seconds is not None and kind.lock_seconds <= 0:
            raise InvalidJob(f"{kind.name}: lock_seconds must be positive")
        if kind.retry_base_seconds < 0 or kind.retry_cap_seconds < kind.retry_base_seconds:
            raise InvalidJob(f"{kind.name}: need 0 <= retry_base_seconds <= retry_cap_seconds")
        if kind.every is not None and kind.every.total_seconds() <= 0:
            raise InvalidJob(f"{kind.name}: every must be positive")
        with self._lock:
            existing = self._kinds.get(kind.name)
            # Re-importing a module (reloads, tests) re-registers the same function.
            if existing is not None and existing.handler is not kind.handler:
                same_place = (
                    existing.handler.__module__ == kind.handler.__module__
                    and existing.handler.__qualname__ == kind.handler.__qualname__
                )
                if not same_place:
                    raise InvalidJob(f"job kind {kind.name!r} is already registered")
            self._kinds[kind.name] = kind
        return kind

    def job(
        self,
        name: str,
        *,
        max_attempts: int = 5,
        lock_seconds: float | None = None,
        retry_base_seconds: float = 10.0,
        retry_cap_seconds: float = 3600.0,
    ) -> Callable[[Handler], JobKind]:
        """Declare a job kind; the decorated function becomes a `JobKind`."""

        def decorate(handler: Handler) -> JobKind:
            return self.register(
                JobKind(
                    name,
                    handler,
                    max_attempts=max_attempts,
                    lock_seconds=lock_seconds,
                    retry_base_seconds=retry_base_seconds,
                    retry_cap_seconds=retry_cap_seconds,
                )
            )

        return decorate

    def periodic(
        self,
        name: str,
        *,
        every: timedelta,
        payload: dict[str, Any] | None = None,
        max_attempts: int = 3,
        lock_seconds: float | None = None,
        retry_base_seconds: float = 10.0,
        retry_cap_seconds: float = 600.0,
    ) -> Callable[[Handler], JobKind]:
        """Declare a recurring job: one row, run about every `every`.

        Workers schedule it idempotently at start-up. After a run (successful or
        not) it is queued again for the next period, so a failing periodic job keeps
        its last error but never stops recurring.
        """

        def decorate(handler: Handler) -> JobKind:
            return self.register(
                JobKind(
                    name,
                    handler,
                    max_attempts=max_attempts,
                    lock_seconds=lock_seconds,
                    retry_base_seconds=retry_base_seconds,
                    retry_cap_seconds=retry_cap_seconds,
                    every=every,
                    payload=dict(payload or {}),
                )
            )

        return decorate

    def get(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(f"no job kind {name!r} is registered") from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[JobKind]:
        return iter(list(self._kinds.values()))

    def names(self) -> list[str]:
        return sorted(self._kinds)


default_registry = JobRegistry()
job = default_registry.job
periodic = default_registry.periodic


def load_job_modules(extra: Iterable[str] = ()) -> list[str]:
    """Import every module that declares job kinds; returns the ones imported.

    `extra` names further modules (`holdfast worker --import`); those must exist.
    """
    loaded = []
    for name in JOB_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Skip only a missing area module, never a missing dependency inside it.
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise
            continue
        loaded.append(name)
    for name in extra:
        importlib.import_module(name)
        loaded.append(name)
    return loaded
