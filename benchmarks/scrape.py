"""Scraping 10,000 infohashes from a local opentracker (target: under one second).

    python benchmarks/scrape.py [--swarms 10000] [--repeat 5]

Starts a fresh opentracker on 127.0.0.1 whitelisting the infohashes, announces one
peer to every tenth swarm, then times `Scraper.scrape` for all of them over UDP
(74 infohashes per datagram), over HTTP with multi-hash scrapes (50 per request),
and over HTTP one infohash per request (what a tracker refusing multi-hash scrape
costs). Each row is the median of `--repeat` runs (the single-hash row runs once),
and checks that every announced swarm was reported.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tracker import opentracker, udp_load

from holdfast.swarm.scrape import Scraper


async def timed(
    url: str, infohashes: list[bytes], multi: bool | None = None, **options: object
) -> tuple[float, int, str]:
    async with Scraper(allow_private_addresses=True, **options) as scraper:  # type: ignore[arg-type]
        start = time.perf_counter()
        outcome = await scraper.scrape(url, infohashes, multi_scrape=multi)
        elapsed = time.perf_counter() - start
    seeded = sum(1 for stats in outcome.stats.values() if stats.seeders)
    return elapsed, seeded, outcome.error.message if outcome.error else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swarms", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(10)
    infohashes = [rng.randbytes(20) for _ in range(args.swarms)]
    seeded = infohashes[::10]
    rows = []
    with opentracker(infohashes) as (_pid, port):
        udp_load(
            ("127.0.0.1", port),
            [(h, 6881, 0) for h in seeded],
            count=len(seeded),
            seconds=30,
            window=16,
        )
        udp_url = f"udp://127.0.0.1:{port}/announce"
        http_url = f"http://127.0.0.1:{port}/announce"
        cases: list[tuple[str, str, dict[str, object], int]] = [
            ("UDP, 74 per datagram", udp_url, {}, args.repeat),
            ("HTTP, 50 per request", http_url, {"http_batch": 50}, args.repeat),
            ("HTTP, 1 per request", http_url, {"multi": False}, 1),
        ]
        for label, url, options, repeat in cases:
            runs = [asyncio.run(timed(url, infohashes, **options)) for _ in range(repeat)]  # type: ignore[arg-type]
            times = [elapsed for elapsed, _, _ in runs]
            found = {found for _, found, _ in runs}
            errors = {error for _, _, error in runs if error}
            rows.append((label, statistics.median(times), min(times), found, errors))

    print(
        f"{args.swarms} infohashes, {len(seeded)} with a seeder, Python {sys.version.split()[0]}\n"
    )
    print("| transport | median s | best s | swarms with a seeder found | errors |")
    print("|---|---:|---:|---:|---|")
    for label, median, best, found, errors in rows:
        shown = "/".join(map(str, sorted(found)))
        print(
            f"| {label} | {median:.3f} | {best:.3f} | {shown} of {len(seeded)} "
            f"| {'; '.join(errors) or 'none'} |"
        )


if __name__ == "__main__":
    main()
