"""Event-loop lag: how late a task that asks to wake every `interval` actually wakes.

A server in a child process runs `LoopLag.run(report=path)`; the benchmark reads the
samples for a time window with `lag_between`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoopLag:
    interval: float = 0.005
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, lag s)

    async def run(self, report: Path | None = None, every: float = 0.25) -> None:
        """Measure until cancelled; with `report`, append the new samples to it (one
        JSON line each) every `every` seconds, so reporting costs the same at any age."""
        loop = asyncio.get_running_loop()
        last_report = loop.time()
        if report is not None:
            report.write_text("", encoding="utf-8")
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append((time.time(), max(0.0, loop.time() - start - self.interval)))
            if report is not None and loop.time() - last_report >= every:
                last_report = loop.time()
                self.write(report)
            elif len(self.samples) > 200_000:
                del self.samples[:100_000]

    def write(self, path: Path) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.writelines(f"[{at:.4f},{lag:.6f}]\n" for at, lag in self.samples)
        self.samples.clear()


def summarise(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags)
    if not ordered:
        return {"samples": 0, "max_ms": 0.0, "p99_ms": 0.0}
    return {
        "samples": len(ordered),
        "max_ms": round(ordered[-1] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
    }


def lag_between(path: Path, start: float, end: float) -> dict[str, float]:
    """Max and p99 lag (ms) a child's monitor saw between two wall-clock times."""
    lags = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):  # a line being written is left out
                at, lag = json.loads(line)
                if start <= at <= end:
                    lags.append(lag)
    return summarise(lags)
