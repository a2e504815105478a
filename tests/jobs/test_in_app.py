"""The server runs jobs in-process by default, and not when workers run elsewhere."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from holdfast.app import create_app
from holdfast.jobs import Job, JobRunner, JobState, enqueue
from holdfast.settings import Settings

from . import sample_jobs  # registers tests.record in the default registry


def make_app(tmp_path: Path, db_url: str, *, run_jobs: bool) -> Any:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        config_file=tmp_path / "no-config.toml",
        run_jobs=run_jobs,
    )
    return create_app(settings)


def state(instance: Any, job_id: int) -> str:
    with instance.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.state


def test_serve_runs_jobs_in_process(tmp_path: Path, db_url: str) -> None:
    assert sample_jobs.record.name == "tests.record"
    app = make_app(tmp_path, db_url, run_jobs=True)
    instance = app.state.instance
    with TestClient(app, base_url="http://127.0.0.1:8000"):
        runner = instance.services["jobs"]
        assert isinstance(runner, JobRunner) and runner.is_alive()
        with instance.db.write() as session:
            job_id = enqueue(session, "tests.record", {"folder": str(tmp_path), "n": 1})
        deadline = time.monotonic() + 30
        while state(instance, job_id) != JobState.done:
            assert time.monotonic() < deadline, "the in-process runner did not run the job"
            time.sleep(0.05)
    assert not runner.is_alive()  # stopped with the app
    assert (tmp_path / "runs").read_text().split()[0] == "1"


def test_serve_leaves_jobs_to_workers_when_told(tmp_path: Path, db_url: str) -> None:
    app = make_app(tmp_path, db_url, run_jobs=False)
    instance = app.state.instance
    with TestClient(app, base_url="http://127.0.0.1:8000"):
        assert instance.services["jobs"] is None
        with instance.db.write() as session:
            enqueue(session, "tests.record", {"folder": str(tmp_path), "n": 1})
        time.sleep(0.5)
    assert not (tmp_path / "runs").exists()
    with instance.db.read() as session:
        assert set(session.scalars(select(Job.state).where(Job.kind == "tests.record"))) == {
            "queued"
        }
