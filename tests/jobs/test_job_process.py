"""`JobProcess`: the jobs of `holdfast serve` in a real child process — run, woken,
restarted when it dies, ended when the server is gone or stops it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from holdfast.db import Database
from holdfast.jobs import enqueue
from holdfast.jobs.child import JobProcess
from holdfast.settings import Settings

from . import sample_jobs

SAMPLE_MODULE = sample_jobs.__name__
SAMPLE_ROOT = Path(sample_jobs.__file__).parents[SAMPLE_MODULE.count(".")]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def runs(folder: Path) -> list[tuple[int, int]]:
    path = folder / "runs"
    if not path.exists():
        return []
    return [
        (int(n), int(pid))
        for n, pid in (line.split() for line in path.read_text(encoding="utf-8").splitlines())
    ]


def record(db: Database, folder: Path, n: int) -> None:
    with db.write() as session:
        enqueue(session, "tests.record", {"folder": str(folder), "n": n})


@pytest.fixture
def process(
    tmp_path: Path, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobProcess]:
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [str(SAMPLE_ROOT), os.environ.get("PYTHONPATH")])),
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_url,
        secret_key="s" * 40,
        config_file=tmp_path / "none.toml",
    )
    jobs = JobProcess(
        settings, imports=[SAMPLE_MODULE], grace_seconds=2, log_path=tmp_path / "jobs.log"
    )
    yield jobs
    jobs.stop()


def test_jobs_the_server_commits_run_in_the_child(
    process: JobProcess, db: Database, tmp_path: Path
) -> None:
    process.start()
    child = process.pid
    assert child is not None and child != os.getpid()
    for n in range(3):
        record(db, tmp_path, n)
    done = wait_for(lambda: len(runs(tmp_path)) == 3 and runs(tmp_path), 30, "three runs")
    assert sorted(done) == [(0, child), (1, child), (2, child)]  # type: ignore[arg-type]
    assert process.stop() == 0  # SIGTERM: a clean stop
    assert process.pid is None


def test_a_child_that_dies_is_replaced_and_its_successor_runs_the_jobs(
    process: JobProcess, db: Database, tmp_path: Path
) -> None:
    process.start()
    first = process.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: process.pid not in (None, first) and process.pid, 30, "a new child")
    assert process.restarts == 1
    record(db, tmp_path, 7)
    wait_for(lambda: runs(tmp_path), 30, "the job to run")
    assert runs(tmp_path) == [(7, second)]


def test_the_child_ends_itself_when_the_server_is_gone(process: JobProcess) -> None:
    process.start()
    proc = process._proc
    assert proc is not None and proc.stdin is not None
    process._stopping.set()  # as if the server died: nobody restarts it
    proc.stdin.close()  # what the kernel does to a dead server's end of the pipe
    assert proc.wait(30) == 0


def test_an_app_told_so_runs_no_jobs_itself(tmp_path: Path, migrated_url: str) -> None:
    """`holdfast serve` builds its app with jobs_here off (its child runs them); the
    settings still say jobs run, as the admin page shows them."""
    from fastapi.testclient import TestClient

    from holdfast.app import create_app

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_url,
        secret_key="s" * 40,
        config_file=tmp_path / "none.toml",
        tracker=False,
        seeder=False,
    )
    for here in (False, True):
        app = create_app(settings, jobs_here=here)
        with TestClient(app):
            runner = app.state.instance.services["jobs"]
            assert (runner is not None) is here
            assert app.state.instance.settings.run_jobs is True
