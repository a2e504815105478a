"""Job kinds for tests that run a real `holdfast worker` process.

The process imports this module with `--import`; each handler leaves a trace in files
under the folder named by its payload, so the test can see what ran, where and how
often without sharing memory with the worker.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from holdfast.jobs import JobContext, job

STUCK_SECONDS = 120  # bounded: a worker the test forgets still ends


def _append(path: Path, line: str) -> int:
    """Append a line, return how many lines the file now has."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return len(path.read_text(encoding="utf-8").splitlines())


@job("tests.hold_first_start", max_attempts=5)
def hold_first_start(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Hangs on its first start ever (ignoring shutdown), succeeds on any later one."""
    folder = Path(payload["folder"])
    starts = _append(folder / "starts", f"{os.getpid()} {ctx.attempt}")
    if starts == 1:
        deadline = time.monotonic() + STUCK_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("the first start was never interrupted")
    _append(folder / "done", str(os.getpid()))


@job("tests.record")
def record(ctx: JobContext, payload: dict[str, Any]) -> None:
    _append(Path(payload["folder"]) / "runs", f"{payload['n']} {os.getpid()}")
