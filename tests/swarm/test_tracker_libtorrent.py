"""The embedded tracker with real BitTorrent clients: libtorrent sessions announce to
it over HTTP (the ASGI app under uvicorn, and the dedicated listener) and UDP, find
each other through it, and the download completes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from holdfast.swarm.http_tracker import HTTPTrackerApp, start_http_tracker
from holdfast.swarm.tracker import AllowList, SwarmStats, Tracker
from holdfast.swarm.udp_tracker import start_udp_tracker
from tests.swarm.helpers import (
    LibtorrentPeer,
    free_port,
    make_torrent,
    tracker_address,
    wait_for,
    wait_for_tcp,
)

pytestmark = pytest.mark.interop


class EmbeddedTracker:
    """The tracker's three front ends in an event loop thread, as the instance runs them."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.host = tracker_address()
        self.asgi_port = free_port(self.host)
        self.listener_port = free_port(self.host)
        self.udp_port = free_port(self.host)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def url(self, front_end: str) -> str:
        return {
            "asgi": f"http://{self.host}:{self.asgi_port}/announce",
            "listener": f"http://{self.host}:{self.listener_port}/announce",
            "udp": f"udp://{self.host}:{self.udp_port}/announce",
        }[front_end]

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        transport, _ = await start_udp_tracker(
            self.tracker, self.host, self.udp_port, secret=b"k" * 32
        )
        listener = await start_http_tracker(self.tracker, self.host, self.listener_port)
        config = uvicorn.Config(
            HTTPTrackerApp(tracker=self.tracker),
            host=self.host,
            port=self.asgi_port,
            log_level="warning",
            lifespan="off",
        )
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        self.ready.set()
        await self.stop.wait()
        server.should_exit = True
        await serving
        listener.close()
        transport.close()

    def __enter__(self) -> EmbeddedTracker:
        self.thread.start()
        self.ready.wait(10)
        wait_for_tcp(self.asgi_port, host=self.host)
        wait_for_tcp(self.listener_port, host=self.host)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def stats(self, infohash: bytes) -> SwarmStats:
        future = asyncio.run_coroutine_threadsafe(self._stats(infohash), self.loop)
        return future.result(5)

    async def _stats(self, infohash: bytes) -> SwarmStats:
        return self.tracker.stats(infohash)

    def hybrid_stats(self, v1: bytes, v2: bytes) -> SwarmStats:
        async def read() -> SwarmStats:
            return self.tracker.hybrid_stats(v1, v2)

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(5)


@pytest.fixture
def peers(libtorrent_peers: Callable[[], LibtorrentPeer]) -> Iterator[Callable[[], LibtorrentPeer]]:
    yield libtorrent_peers


@pytest.mark.parametrize(
    ("front_end", "kind"),
    [("asgi", "v1"), ("listener", "v2"), ("udp", "hybrid"), ("asgi", "hybrid")],
)
def test_a_client_finds_the_seeder_through_the_tracker_and_downloads(
    tmp_path: Path, peers: Callable[[], LibtorrentPeer], front_end: str, kind: str
) -> None:
    allowed = AllowList()
    with EmbeddedTracker(Tracker(is_allowed=allowed, interval=60, min_interval=5)) as server:
        torrent = make_torrent(tmp_path / "seed", kind, [server.url(front_end)])
        for infohash in torrent.swarms:
            allowed.add(infohash)

        seeder, leecher = peers(), peers()
        seeding = seeder.add(torrent, torrent.save_path)
        wait_for(lambda: seeding.status().is_seeding, 30, "the seeder to check its data")
        key = torrent.swarms[-1]
        wait_for(lambda: server.stats(key).seeders == 1, 30, "the seeder's announce")

        downloading = leecher.add(torrent, tmp_path / "download")
        wait_for(lambda: downloading.status().is_seeding, 60, "the download to complete")
        assert (tmp_path / "download" / "data").read_bytes() == (
            torrent.save_path / "data"
        ).read_bytes()

        # The finished client announces `completed`; every swarm of the torrent shows it.
        for infohash in torrent.swarms:
            wait_for(
                lambda infohash=infohash: server.stats(infohash) == SwarmStats(2, 0, 1),
                30,
                f"the completed announce in swarm {infohash.hex()}",
            )
        if kind == "hybrid":
            assert torrent.infohash_v1 is not None and torrent.infohash_v2 is not None
            both = server.hybrid_stats(torrent.infohash_v1, torrent.infohash_v2)
            assert both == SwarmStats(2, 0, 1)  # two peers and one download, counted once


def test_a_torrent_the_catalogue_does_not_hold_gets_no_peers(
    tmp_path: Path, peers: Callable[[], LibtorrentPeer]
) -> None:
    with EmbeddedTracker(Tracker(is_allowed=AllowList())) as server:
        torrent = make_torrent(tmp_path / "seed", "v1", [server.url("asgi")])
        handle = peers().add(torrent, torrent.save_path)

        def tracker_message() -> Any:
            trackers = handle.trackers()
            for entry in trackers:
                for endpoint in entry.get("endpoints", []):
                    for info in endpoint.get("info_hashes", []):
                        if info.get("message"):
                            return info["message"]
            return None

        message = wait_for(tracker_message, 30, "the tracker's refusal")
        assert "unregistered torrent" in message
        assert server.stats(torrent.swarms[0]) == SwarmStats(0, 0, 0)
