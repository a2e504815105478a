"""`holdfast worker` as real processes: killed mid-job, stopped mid-job, run once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from holdfast.cli.worker import worker
from holdfast.db import Database
from holdfast.jobs import Job, JobState, enqueue

from . import sample_jobs

# The worker imports the sample kinds under the same name this process did.
SAMPLE_MODULE = sample_jobs.__name__
SAMPLE_ROOT = Path(sample_jobs.__file__).parents[SAMPLE_MODULE.count(".")]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def job_row(db: Database, job_id: int) -> Job:
    with db.read() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row


@pytest.fixture
def spawn(tmp_path: Path, migrated_url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `holdfast worker` processes; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SAMPLE_ROOT), env.get("PYTHONPATH")]))
    env["HOLDFAST_JOB_LOCK_SECONDS"] = "2"  # a killed worker's job is free again quickly

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "holdfast",
                "worker",
                "--database-url",
                migrated_url,
                "--data-dir",
                str(tmp_path / "data"),
                "--import",
                SAMPLE_MODULE,
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for log in sorted(tmp_path.glob("worker-*.log")):  # shown when a test fails
        print(log.name, log.read_text(errors="replace"), sep="\n")


def enqueue_hold(db: Database, folder: Path) -> int:
    with db.write() as session:
        return enqueue(session, "tests.hold_first_start", {"folder": str(folder)})


@pytest.mark.slow
def test_a_killed_worker_s_job_completes_after_restart(
    db: Database, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    job_id = enqueue_hold(db, tmp_path)
    first = spawn("--threads", "1")
    wait_for(lambda: len(lines(tmp_path / "starts")) == 1, 60, "the first worker to start the job")
    row = job_row(db, job_id)
    assert row.state == JobState.running
    assert f":{first.pid}:" in (row.locked_by or "")

    first.send_signal(signal.SIGKILL)  # no chance to hand the job back
    assert first.wait(10) == -signal.SIGKILL
    assert job_row(db, job_id).state == JobState.running  # still held by the dead worker

    second = spawn("--threads", "1")
    wait_for(lambda: job_row(db, job_id).state == JobState.done, 60, "the job to complete")
    starts = [line.split() for line in lines(tmp_path / "starts")]
    assert starts == [[str(first.pid), "1"], [str(second.pid), "2"]]
    assert lines(tmp_path / "done") == [str(second.pid)]
    assert job_row(db, job_id).attempts == 2

    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0


def test_sigterm_hands_an_unfinished_job_back(
    db: Database, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    job_id = enqueue_hold(db, tmp_path)
    proc = spawn("--threads", "1", "--grace", "0.5")
    wait_for(lambda: len(lines(tmp_path / "starts")) == 1, 60, "the worker to start the job")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    row = job_row(db, job_id)
    assert (row.state, row.attempts, row.locked_by) == ("queued", 0, None)

    # Handed back, not lost: the next worker runs it at once, as attempt 1 again.
    done = spawn("--once")
    assert done.wait(60) == 0
    assert job_row(db, job_id).state == JobState.done
    assert [line.split()[1] for line in lines(tmp_path / "starts")] == ["1", "1"]


def test_once_runs_every_due_job_then_exits(
    db: Database, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with db.write() as session:
        for n in range(8):
            enqueue(session, "tests.record", {"folder": str(tmp_path), "n": n})
    proc = spawn("--once", "--threads", "2")
    assert proc.wait(60) == 0
    assert sorted(int(line.split()[0]) for line in lines(tmp_path / "runs")) == list(range(8))
    with db.read() as session:
        states = set(session.scalars(select(Job.state).where(Job.kind == "tests.record")))
    assert states == {"done"}


# --- refusals: clear message, exit code 1, nothing created


def test_worker_refuses_a_missing_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "typo"
    result = CliRunner().invoke(
        worker,
        ["--data-dir", str(data_dir), "--database-url", f"sqlite:///{data_dir / 'holdfast.db'}"],
    )
    assert result.exit_code == 1
    assert "no database at" in result.output
    assert not data_dir.exists()


def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = CliRunner().invoke(
        worker, ["--data-dir", str(tmp_path), "--database-url", f"sqlite:///{empty}", "--once"]
    )
    assert result.exit_code == 1
    assert "holdfast db upgrade" in result.output
    assert empty.read_bytes() == b""


def test_worker_refuses_a_bad_database_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(worker, ["--data-dir", str(tmp_path), "--database-url", "nope"])
    assert result.exit_code == 1
    assert "Error" in result.output


def test_worker_refuses_a_missing_job_module(migrated_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        worker,
        [
            "--data-dir",
            str(tmp_path),
            "--database-url",
            migrated_url,
            "--import",
            "holdfast_no_such_module",
        ],
    )
    assert result.exit_code == 1
    assert "cannot import job module" in result.output


@pytest.mark.parametrize("args", [["--threads", "0"], ["--grace", "-1"]])
def test_worker_rejects_bad_options(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(worker, ["--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2
