"""libtorrent announcing over UDP to the C listener (holdfast.swarm.fastpath): the
download tests of test_tracker_libtorrent.py, run again with a `FastTracker` and its
UDP front end served by `UDPTrackerThread` (the C listener), as `holdfast serve` runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tests.swarm.test_tracker_libtorrent as base
from holdfast.swarm import fastpath
from holdfast.swarm.tracker import Tracker
from holdfast.swarm.udp_tracker import UDPTrackerThread
from tests.swarm.helpers import LibtorrentPeer

pytestmark = pytest.mark.interop

if not fastpath.AVAILABLE:
    pytest.fail("holdfast.swarm._udpfast is not built: python setup.py build_ext --inplace")


class _Stopper:
    def __init__(self, thread: UDPTrackerThread) -> None:
        self.thread = thread

    def close(self) -> None:
        self.thread.stop()


async def _start_listener_thread(
    tracker: Tracker, host: str, port: int, *, secret: bytes, **kwargs: Any
) -> tuple[_Stopper, None]:
    thread = UDPTrackerThread(tracker, host, port, secret=secret, **kwargs)
    assert thread._fast is not None  # the C listener answers
    thread.start()
    return _Stopper(thread), None


@pytest.fixture
def peers(libtorrent_peers: Callable[[], LibtorrentPeer]) -> Callable[[], LibtorrentPeer]:
    return libtorrent_peers


@pytest.fixture(autouse=True)
def _c_store_and_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "Tracker", fastpath.FastTracker)
    monkeypatch.setattr(base, "start_udp_tracker", _start_listener_thread)


@pytest.mark.parametrize(
    ("front_end", "kind"), [("udp", "v1"), ("udp", "v2"), ("udp", "hybrid"), ("asgi", "hybrid")]
)
def test_a_client_downloads_through_the_c_listener(
    tmp_path: Path,
    peers: Callable[[], LibtorrentPeer],
    front_end: str,
    kind: str,
) -> None:
    base.test_a_client_finds_the_seeder_through_the_tracker_and_downloads(
        tmp_path, peers, front_end, kind
    )


def test_an_unknown_torrent_is_refused_by_the_c_store(
    tmp_path: Path,
    peers: Callable[[], LibtorrentPeer],
) -> None:
    base.test_a_torrent_the_catalogue_does_not_hold_gets_no_peers(tmp_path, peers)
