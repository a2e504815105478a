"""Fixtures starting real trackers and BitTorrent peers (see helpers.py).

What the swarm tests rely on about opentracker (Debian build) and libtorrent:

- opentracker tracks only whitelisted infohashes: a file of 40-hex lines named in
  its config by a path relative to its chroot (`-d DIR`, `access.whitelist
  /whitelist.txt`), read after it drops to user nobody (so the folder must be
  world-readable, outside pytest's private tmp tree); `kill -HUP` reloads it.
- A v2 torrent is tracked under the first 20 bytes of its SHA-256 infohash; a
  hybrid is two swarms, and a hybrid-aware client announces to both.
- One port serves HTTP and UDP (`-p PORT -P PORT`); UDP scrape answers at most 74
  hashes per datagram, and its HTTP multi-hash scrape answers only the first 64.
- A fresh opentracker per test: peers left from an earlier test hide the real seeder.
- libtorrent keeps UDP connection ids per tracker IP for the whole process and does
  not drop one a tracker refuses: every tracker in a test run (opentracker or an
  instance's embedded one) gets a loopback address of its own (`tracker_address`).
"""

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
