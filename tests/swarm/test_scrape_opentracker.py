"""Scraping a real opentracker (a fresh one per test) whose peers are real
libtorrent clients: v1, v2 and hybrid swarms, over UDP and HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from holdfast.swarm.scrape import ScrapeOutcome, Scraper
from holdfast.swarm.tracker import SwarmStats
from tests.swarm.helpers import LibtorrentPeer, OpenTracker, make_torrent, wait_for

pytestmark = pytest.mark.interop


def scrape(url: str, infohashes: list[bytes], **options: object) -> ScrapeOutcome:
    async def go() -> ScrapeOutcome:
        async with Scraper(allow_private_addresses=True, **options) as scraper:  # type: ignore[arg-type]
            return await scraper.scrape(url, infohashes)

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_scrape_sees_real_clients_over_udp_and_http(
    tmp_path: Path,
    opentracker: Callable[[list[bytes]], OpenTracker],
    libtorrent_peers: Callable[[], LibtorrentPeer],
    kind: str,
) -> None:
    tracker = opentracker([])
    announce = tracker.udp_url if kind == "v1" else tracker.http_url
    torrent = make_torrent(tmp_path / "seed", kind, [announce])
    tracker.allow(torrent.swarms)

    seeder, leecher = libtorrent_peers(), libtorrent_peers()
    seeder.add(torrent, torrent.save_path)
    # The seeder must be known (and the leecher's announce must not predate it).
    wait_for(
        lambda: (
            scrape(tracker.udp_url, torrent.swarms).stats.get(torrent.swarms[-1], None)
            == SwarmStats(1, 0, 0)
        ),
        30,
        "the seeder's announce",
    )
    downloading = leecher.add(torrent, tmp_path / "download")
    wait_for(lambda: downloading.status().is_seeding, 60, "the download to complete")

    # Scrape by the infohashes a catalogue holds: v1 (20 bytes) and v2 (32 bytes).
    asked = [h for h in (torrent.infohash_v1, torrent.infohash_v2) if h is not None]
    finished = SwarmStats(seeders=2, leechers=0, completed=1)
    for url in (tracker.udp_url, tracker.http_url):
        outcome = wait_for(
            lambda url=url: (
                (o := scrape(url, asked)).stats == dict.fromkeys(torrent.swarms, finished) and o
            ),
            30,
            f"{url} to report the finished download",
        )
        assert outcome.error is None


def test_many_swarms_in_few_requests(
    opentracker: Callable[[list[bytes]], OpenTracker],
    tmp_path: Path,
    libtorrent_peers: Callable[[], LibtorrentPeer],
) -> None:
    """UDP: 74 infohashes per datagram; HTTP: batches; both find the one live swarm."""
    filler = [os.urandom(20) for _ in range(300)]
    tracker = opentracker(filler)
    torrent = make_torrent(tmp_path / "seed", "v1", [tracker.http_url])
    tracker.allow(torrent.swarms)
    libtorrent_peers().add(torrent, torrent.save_path)
    live = torrent.swarms[0]
    everything = [*filler[:150], live, *filler[150:]]

    udp = wait_for(
        lambda: (
            (o := scrape(tracker.udp_url, everything)).stats.get(live) == SwarmStats(1, 0, 0) and o
        ),
        30,
        "the seeder in a UDP scrape",
    )
    assert udp.error is None
    # UDP answers every infohash it was asked (zeros for empty swarms).
    assert len(udp.stats) == 301
    assert all(udp.stats[h] == SwarmStats(0, 0, 0) for h in filler)

    http = scrape(tracker.http_url, everything, http_batch=50)
    assert http.error is None
    assert http.multi_scrape is True
    # opentracker leaves swarms without peers out of HTTP scrapes.
    assert http.stats == {live: SwarmStats(1, 0, 0)}


def test_opentracker_refuses_an_infohash_it_does_not_whitelist(
    opentracker: Callable[[list[bytes]], OpenTracker],
) -> None:
    tracker = opentracker([os.urandom(20)])
    stranger = os.urandom(20)
    outcome = scrape(tracker.http_url, [stranger])
    assert outcome.error is None and outcome.stats == {}
