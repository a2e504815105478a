"""Background jobs: work stored as rows, run by worker threads in any process.

Every network side effect (tracker scrape, delivery to one peer inbox, backfill,
webseed check, seeding assignment) is a `Job` row. A crash loses nothing: a job held
by a worker that died is picked up again once its lock expires. Handlers therefore
run *at least once* and must be idempotent.

State graph::

    enqueue ─► queued ──claim──► running ──returns None────────────────────► done
                 ▲                 │ │ │
                 │                 │ │ └─ raises JobFailed, or fails with ──► dead
                 │                 │ │    no attempts left (error kept)        │
                 │                 │ └─ raises (attempts left) ─► retrying     │
                 │                 │        (exponential backoff with jitter,  │
                 │                 │         or RetryLater's time) ──claim──► running
                 │                 └─ lock expired (worker died or hung):
                 │                    claimable again, counted as an attempt
                 ├── returned a time (not finished, poll again; attempts reset)
                 ├── released unfinished at shutdown (attempt not counted)
                 ├── a periodic kind's run ended: its next period (never dead)
                 └── requeue(): an operator runs a dead or done job again ◄──┘

Claiming: PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite a `BEGIN IMMEDIATE`
write transaction, so claims serialise across threads and processes.

Using it from an area::

    # holdfast/swarm/jobs.py  (listed in holdfast.jobs.kinds.JOB_MODULES)
    @job("swarm.scrape", max_attempts=8)
    def scrape(ctx: JobContext, payload: dict[str, Any]) -> None: ...

    # in a service, atomically with the change that causes the work:
    with db.write() as session:
        upload = ...
        enqueue(session, scrape, {"upload_id": upload.id}, key=f"scrape:{upload.id}")

Running it: `background_jobs(db, settings)` in the app's lifespan, or
`holdfast worker` processes (with `run_jobs = false` on the server).
"""

from holdfast.jobs.engine import (
    ClaimedJob,
    claim_matching,
    complete_many,
    enqueue,
    enqueue_many,
    fail,
    release,
    requeue,
)
from holdfast.jobs.kinds import (
    InvalidJob,
    JobContext,
    JobError,
    JobFailed,
    JobKind,
    JobRegistry,
    JobResult,
    RetryLater,
    UnknownJobKind,
    default_registry,
    job,
    load_job_modules,
    periodic,
)
from holdfast.jobs.models import Job, JobState
from holdfast.jobs.runner import JobRunner, background_jobs

__all__ = [
    "ClaimedJob",
    "InvalidJob",
    "Job",
    "JobContext",
    "JobError",
    "JobFailed",
    "JobKind",
    "JobRegistry",
    "JobResult",
    "JobRunner",
    "JobState",
    "RetryLater",
    "UnknownJobKind",
    "background_jobs",
    "claim_matching",
    "complete_many",
    "default_registry",
    "enqueue",
    "enqueue_many",
    "fail",
    "job",
    "load_job_modules",
    "periodic",
    "release",
    "requeue",
]
