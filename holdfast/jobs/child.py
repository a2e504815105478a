"""The jobs of `holdfast serve`, run in a child process of the server.

With `run_jobs` and `job_process` on (the defaults), `holdfast serve` runs no jobs in
its own threads: it starts `python -m holdfast.jobs.child` and hands it its settings.
The jobs (applying what peers deliver, deliveries, scrapes, checks) then run on
another core, and however busy they are the server's event loop stays free to answer
(Python runs one thread at a time per process).

Parent and child talk through the child's standard input only:

- the first line is the settings, as JSON (stdin rather than argv or the environment,
  so the instance secret is not visible to other users' `ps`);
- then one byte each time the server commits new jobs, so they start at once rather
  than at the child's next poll;
- end of file means the server is gone: the child stops, as on SIGTERM (running jobs
  get `grace` seconds to finish, the rest go back to the queue).

`JobProcess` starts the child, restarts it (with a growing pause) if it ever dies, and
stops it with the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

from holdfast.settings import Settings

log = logging.getLogger(__name__)

RESTART_PAUSE_FIRST = 1.0
RESTART_PAUSE_MAX = 60.0
STABLE_SECONDS = 60.0  # a child that ran this long restarts after the first pause again


class _PipeWakeup(threading.Event):
    """Registered with the jobs engine like a local runner's event: `set()` (called
    after a commit that added jobs) writes one byte to the child's standard input."""

    def __init__(self, owner: JobProcess) -> None:
        super().__init__()
        self.owner = owner

    def set(self) -> None:
        self.owner.wake()


class JobProcess:
    """One child process running this server's jobs, kept running until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        threads: int = 2,
        imports: Iterable[str] = (),
        grace_seconds: float = 10.0,
        log_path: os.PathLike[str] | str | None = None,
    ) -> None:
        self.settings = settings
        self.threads = threads
        self.imports = tuple(imports)
        self.grace_seconds = grace_seconds
        self.log_path = log_path
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._wakeup = _PipeWakeup(self)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> JobProcess:
        from holdfast.jobs.engine import register_wakeup

        self._spawn()
        register_wakeup(self._wakeup)
        self._watcher = threading.Thread(target=self._watch, name="holdfast-job-process")
        self._watcher.daemon = True
        self._watcher.start()
        return self

    def _spawn(self) -> None:
        values: dict[str, Any] = self.settings.model_dump(mode="json")
        header = {"settings": values, "threads": self.threads, "imports": list(self.imports)}
        header["grace"] = self.grace_seconds
        output: Any = None
        if self.log_path is not None:
            output = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "holdfast.jobs.child"],
                stdin=subprocess.PIPE,
                start_new_session=True,  # the server stops it, in order, on Ctrl-C
                stdout=output,
                stderr=subprocess.STDOUT if output is not None else None,
            )
        finally:
            if output is not None:
                output.close()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(header).encode("utf-8") + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it died at once: the watcher sees it and starts another
        # From here on wakes are single bytes that must never block the committer.
        flags = fcntl.fcntl(proc.stdin.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
        with self._lock:
            self._proc = proc
        log.info("jobs run in process %s", proc.pid)

    def wake(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):  # full pipe: a wake is pending anyway
            os.write(proc.stdin.fileno(), b"w")

    def _watch(self) -> None:
        pause = RESTART_PAUSE_FIRST
        while not self._stopping.is_set():
            with self._lock:
                proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > STABLE_SECONDS:
                pause = RESTART_PAUSE_FIRST
            log.warning(
                "the job process %s exited (%s); restarting in %.0f s", proc.pid, code, pause
            )
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_PAUSE_MAX)
            self.restarts += 1
            self._close_stdin(proc)
            self._spawn()

    @staticmethod
    def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def stop(self) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL after the grace time); its exit code."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.grace_seconds + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._close_stdin(proc)
        if self._watcher is not None:
            self._watcher.join(5)
        return proc.returncode


# ---------------------------------------------------------------- the child


def main() -> None:
    from holdfast.db import Database
    from holdfast.jobs.engine import wake_local_runners
    from holdfast.jobs.kinds import load_job_modules
    from holdfast.jobs.runner import JobRunner

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("holdfast").setLevel(logging.INFO)
    line = sys.stdin.buffer.readline()
    if not line:
        return  # the server went away before saying anything
    header = json.loads(line)
    settings = Settings(**header["settings"])
    load_job_modules(tuple(header.get("imports") or ()))
    db = Database(settings.resolved_database_url)
    runner = JobRunner(db, settings, threads=int(header.get("threads") or 2), name="jobs")
    stop = threading.Event()
    hurry = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def listen() -> None:
        while True:
            try:
                chunk = os.read(0, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                stop.set()  # the server is gone
                return
            wake_local_runners()

    threading.Thread(target=listen, name="holdfast-job-wakes", daemon=True).start()
    runner.start()
    try:
        while runner.is_alive() and not stop.wait(0.2):
            pass
        runner.stop(float(header.get("grace", 10.0)), interrupt=hurry)
    finally:
        db.dispose()


if __name__ == "__main__":
    main()
