"""Fixtures starting real trackers and BitTorrent peers (see helpers.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.swarm.helpers import (
    LibtorrentPeer,
    OpenTracker,
    free_port,
    tracker_address,
    wait_for_tcp,
    write_whitelist,
)


@pytest.fixture
def opentracker() -> Iterator[Callable[[list[bytes]], OpenTracker]]:
    """Starts a fresh opentracker whitelisting the given infohashes."""
    exe = shutil.which("opentracker")
    if exe is None:
        pytest.fail("opentracker is not installed (Debian package opentracker)")
    started: list[OpenTracker] = []
    folders: list[Path] = []

    def start(infohashes: list[bytes]) -> OpenTracker:
        # Its own folder outside pytest's private tmp tree: opentracker chroots
        # there and reads the whitelist after dropping to user nobody.
        folder = Path(tempfile.mkdtemp(prefix="hf-opentracker-"))
        folders.append(folder)
        folder.chmod(0o755)
        write_whitelist(folder, infohashes)
        (folder / "opentracker.conf").write_text("access.whitelist /whitelist.txt\n")
        host = tracker_address()
        port = free_port(host)
        process = subprocess.Popen(
            [
                *(exe, "-i", host, "-p", str(port), "-P", str(port), "-A", "127.0.0.1"),
                *("-d", str(folder), "-u", "nobody", "-f", str(folder / "opentracker.conf")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        tracker = OpenTracker(host, port, folder, process, list(infohashes))
        started.append(tracker)
        wait_for_tcp(port, host=host)
        return tracker

    yield start
    for tracker in started:
        tracker.process.terminate()
        try:
            tracker.process.wait(5)
        except subprocess.TimeoutExpired:
            tracker.process.kill()
            tracker.process.wait(5)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def libtorrent_peers() -> Iterator[Callable[[], LibtorrentPeer]]:
    peers: list[LibtorrentPeer] = []

    def make() -> LibtorrentPeer:
        peer = LibtorrentPeer()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()
