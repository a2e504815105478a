"""Real trackers and real BitTorrent peers for the swarm tests, all on 127.0.0.1.

- `OpenTracker`: a fresh opentracker (Debian build: whitelist mode) per test.
- `make_torrent` / `LibtorrentPeer`: torrents and libtorrent sessions set up the
  way that works on loopback (no DHT/LSD/UPnP, no uTP, many connections per IP).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
        return port


def tracker_address() -> str:
    """A loopback address of its own for one tracker.

    libtorrent caches UDP connection ids per tracker *IP* for the whole process
    and never drops one a tracker refuses, so two trackers on one IP in one test
    run would be sent each other's ids for a minute.
    """
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_tcp(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    def connects() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return True
        return False

    wait_for(connects, timeout, f"a listener on port {port}")


# --- opentracker


@dataclass
class OpenTracker:
    host: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    whitelist: list[bytes] = field(default_factory=list)

    @property
    def udp_url(self) -> str:
        return f"udp://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/announce"

    def allow(self, infohashes: list[bytes]) -> None:
        """Add infohashes to the whitelist and make opentracker reload it."""
        self.whitelist.extend(infohashes)
        write_whitelist(self.folder, self.whitelist)
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.2)


def write_whitelist(folder: Path, infohashes: list[bytes]) -> None:
    path = folder / "whitelist.txt"
    path.write_text("".join(h.hex() + "\n" for h in infohashes))
    path.chmod(0o644)


# --- libtorrent


@dataclass
class Torrent:
    data: bytes  # the .torrent file
    info: Any  # lt.torrent_info
    save_path: Path  # folder holding the content
    infohash_v1: bytes | None
    infohash_v2: bytes | None  # full 32 bytes

    @property
    def swarms(self) -> list[bytes]:
        """The 20-byte keys a tracker knows this torrent by."""
        keys = []
        if self.infohash_v1 is not None:
            keys.append(self.infohash_v1)
        if self.infohash_v2 is not None:
            keys.append(self.infohash_v2[:20])
        return keys


def make_torrent(
    folder: Path, kind: str, trackers: list[str], *, size: int = 600_000, name: str = "data"
) -> Torrent:
    """A one-file torrent of random bytes: kind is "v1", "v2" or "hybrid"."""
    import libtorrent as lt

    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(os.urandom(size))
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[kind]
    with warnings.catch_warnings():
        # The file_storage API is deprecated in libtorrent 2.1 but the one in every 2.x.
        warnings.simplefilter("ignore", DeprecationWarning)
        storage = lt.file_storage()
        lt.add_files(storage, str(folder / name))
        creator = lt.create_torrent(storage, 16384 * 4, flags=flags)
    for tier, url in enumerate(trackers):
        creator.add_tracker(url, tier)
    lt.set_piece_hashes(creator, str(folder))
    data = lt.bencode(creator.generate())
    info = lt.torrent_info(lt.bdecode(data))
    hashes = info.info_hashes()
    v1 = hashes.v1.to_bytes() if hashes.has_v1() else None
    v2 = hashes.v2.to_bytes() if hashes.has_v2() else None
    return Torrent(data, info, folder, v1, v2)


class LibtorrentPeer:
    """A libtorrent session on 127.0.0.1, as a real BitTorrent client."""

    def __init__(self) -> None:
        import libtorrent as lt

        self.port = free_port()
        self.session = lt.session(
            {
                "listen_interfaces": f"127.0.0.1:{self.port}",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "enable_outgoing_utp": False,
                "enable_incoming_utp": False,
                "allow_multiple_connections_per_ip": True,
                "announce_to_all_trackers": True,
                "announce_to_all_tiers": True,
                "alert_mask": lt.alert_category.status | lt.alert_category.error,
            }
        )

    def add(self, torrent: Torrent, save_path: Path) -> Any:
        import libtorrent as lt

        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent.info)
        params.save_path = str(save_path)
        return self.session.add_torrent(params)

    def close(self) -> None:
        for handle in self.session.get_torrents():
            self.session.remove_torrent(handle)
        self.session.pause()
