"""Real clients download a published upload from the instance, byte for byte.

A real instance (uvicorn on 127.0.0.1, embedded tracker at /announce, seeder on a free
port) and the real `holdfast publish` command; then qbittorrent-nox (v1, v2, hybrid)
and aria2c (v1) fetch it through the tracker from the instance's seeder, and again
from the web seed alone (no seeder running); transmission-cli (v1) when the seeder
dials it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from holdfast.torrents import bencode
from tests.seeding.helpers import make_data
from tests.seeding.live import Live, holdfast, live_instance, publish_env, same_tree
from tests.seeding.test_publish import infohash_of
from tests.seeding.transmission import Transmission
from tests.torrents.clients import Aria2, ClientError, QBittorrent, have, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SIZE = 3_000_000  # per file; 3 files of ~3 MB with 32 KiB..4 MiB pieces


def require(program: str) -> None:
    if not have(program):
        pytest.fail(f"{program} is not installed")


@pytest.fixture
def seeded(make_settings: Any) -> Iterator[Live]:
    with live_instance(make_settings) as live:
        yield live


@pytest.fixture
def webseed_only(make_settings: Any) -> Iterator[Live]:
    with live_instance(make_settings, seeder=False) as live:
        yield live


def publish(live: Live, tmp_path: Path, version: str, name: str) -> tuple[str, bytes, Path]:
    source = make_data(tmp_path / "src" / name, files=3, size=SIZE, seed=f"{name}-{version}")
    out = tmp_path / f"{name}.torrent"
    r = holdfast(
        "publish", str(source), "--to", live.base_url, "--dataset", live.dataset,
        "--version", version, "--torrent-out", str(out), "--quiet", env=publish_env(live),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    ih = infohash_of(r.stdout)
    # The torrent a downloader gets is the instance's copy.
    data = live.app.state.instance.catalogue.torrent_bytes(None, ih)[1]
    assert data == out.read_bytes()
    return ih, data, source


def without_webseeds(data: bytes) -> bytes:
    """The same torrent (same infohash) without its url-list: only peers can serve it."""
    meta = bencode.decode(data)
    meta.pop(b"url-list")
    return bencode.encode(meta)


def wait_uploaded(live: Live, ih: str) -> None:
    """The instance's seeder reports having sent (about) all of the data."""
    wait_until(
        lambda: live.api(f"/api/v1/uploads/{ih}/seeding")["uploaded"] >= 3 * SIZE * 0.9,
        15,
        "the seeder's upload counter",
    )


def qbt_hash(live: Live, ih: str) -> str:
    upload = live.api(f"/api/v1/uploads/{ih}")
    return str(upload["infohash_v2"][:40] if upload["infohash_v2"] else upload["infohash_v1"])


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_qbittorrent_from_the_seeder_via_the_tracker(
    seeded: Live, tmp_path: Path, version: str
) -> None:
    require("qbittorrent-nox")
    ih, data, source = publish(seeded, tmp_path, version, "qbt")
    seeded.wait_seeding(ih)
    with QBittorrent(tmp_path / "qbt") as qbt:
        qbt.add(without_webseeds(data), tmp_path / "down")
        qbt.wait_complete(qbt_hash(seeded, ih), timeout=120)
    same_tree(source, tmp_path / "down" / source.name)
    wait_uploaded(seeded, ih)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_qbittorrent_from_the_webseed_alone(
    webseed_only: Live, tmp_path: Path, version: str
) -> None:
    require("qbittorrent-nox")
    ih, data, source = publish(webseed_only, tmp_path, version, "qbtweb")
    assert "seeder" not in webseed_only.instance.services
    with QBittorrent(tmp_path / "qbt") as qbt:
        qbt.add(data, tmp_path / "down")
        qbt.wait_complete(qbt_hash(webseed_only, ih), timeout=120)
    same_tree(source, tmp_path / "down" / source.name)


def test_aria2_from_the_seeder_via_the_tracker(seeded: Live, tmp_path: Path) -> None:
    require("aria2c")
    ih, data, source = publish(seeded, tmp_path, "v1", "aria")
    seeded.wait_seeding(ih)
    torrent_file = tmp_path / "no-webseed.torrent"
    torrent_file.write_bytes(without_webseeds(data))
    with Aria2(torrent_file, tmp_path / "down") as aria:
        aria.wait_done(timeout=120)
    same_tree(source, tmp_path / "down" / source.name)
    wait_uploaded(seeded, ih)


def test_aria2_from_the_webseed_alone(webseed_only: Live, tmp_path: Path) -> None:
    require("aria2c")
    _ih, data, source = publish(webseed_only, tmp_path, "v1", "ariaweb")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(data)
    with Aria2(torrent_file, tmp_path / "down") as aria:
        aria.wait_done(timeout=120)
    same_tree(source, tmp_path / "down" / source.name)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_transmission_when_the_seeder_dials_it(seeded: Live, tmp_path: Path) -> None:
    require("transmission-cli")
    ih, data, source = publish(seeded, tmp_path, "v1", "tr")
    seeded.wait_seeding(ih)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(without_webseeds(data))
    seeder = seeded.instance.services["seeder"]
    upload_id = seeded.instance.catalogue.get_upload(None, ih).id
    down = tmp_path / "down"
    with Transmission(torrent_file, down, tmp_path / "tr-home") as tr:
        wait_until(lambda: _listening(tr.port), 30, "transmission-cli to listen")

        def complete() -> bool:
            if not tr.process.running():
                raise ClientError(f"transmission-cli exited:\n{tr.process.tail()}")
            seeder.connect_peer(upload_id, "127.0.0.1", tr.port)
            try:
                same_tree(source, down / source.name)
            except (AssertionError, OSError):
                return False
            return True

        wait_until(complete, 120, "transmission-cli download", interval=1.0)
    same_tree(source, down / source.name)
    wait_uploaded(seeded, ih)
