"""Interop with real BitTorrent software on 127.0.0.1.

Our torrents: libtorrent checks and seeds them; qbittorrent-nox downloads v1,
v2 and hybrid from that seeder, aria2c downloads v1. Their torrents: what
mktorrent, transmission-create and libtorrent make parses here with the
infohash those tools report. (aria2 1.36 refuses v2 and miscomputes hybrid
infohashes; transmission 3.00 cannot read v2 or hybrid: not tested there.)
"""

from __future__ import annotations

import filecmp
import random
import re
import subprocess
import warnings
from pathlib import Path

import libtorrent as lt
import pytest

from holdfast.torrents import create_torrent, parse_torrent
from tests.torrents.clients import Aria2, LibtorrentSession, QBittorrent, have

pytestmark = pytest.mark.interop

KiB = 1024


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "seed" / "ocean"
    rng = random.Random(7)
    for name, size in [
        ("a.csv", 1000),
        ("grid/t0.bin", 700 * KiB + 3),
        ("grid/t1.bin", 256 * KiB),
        ("grid/empty", 0),
        ("z.txt", 5),
    ]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return root


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(
        p.relative_to(b) for p in b.rglob("*") if p.is_file() and ".pad" not in p.parts
    )
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_libtorrent_checks_and_seeds_our_torrent(dataset: Path, version: str) -> None:
    data = create_torrent(dataset, version=version, piece_length=64 * KiB).data  # type: ignore[arg-type]
    with LibtorrentSession() as seeder:
        seeder.add(data, save_path=dataset.parent)
        seeder.wait_seeding(timeout=60)  # every piece hashed by libtorrent and found good


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_libtorrent_downloads_our_torrent(dataset: Path, tmp_path: Path, version: str) -> None:
    data = create_torrent(dataset, version=version, piece_length=64 * KiB).data  # type: ignore[arg-type]
    down = tmp_path / "down"
    with LibtorrentSession() as seeder, LibtorrentSession() as leecher:
        seeder.add(data, save_path=dataset.parent)
        seeder.wait_seeding()
        leecher.add(data, save_path=down)
        leecher.connect(data, seeder.port)
        leecher.wait_complete(data, timeout=120)
    same_tree(dataset, down / "ocean")


@pytest.mark.skipif(not have("qbittorrent-nox"), reason="qbittorrent-nox not installed")
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_qbittorrent_downloads_from_libtorrent_seeder(
    dataset: Path, tmp_path: Path, version: str
) -> None:
    created = create_torrent(dataset, version=version, piece_length=64 * KiB)  # type: ignore[arg-type]
    t = created.torrent
    # qBittorrent names a torrent by its v1 infohash, or by the truncated v2 one
    qbt_hash = t.infohash_v1 if version == "v1" else t.infohash_v2_truncated
    assert qbt_hash is not None
    down = tmp_path / "qbt-down"
    with LibtorrentSession() as seeder, QBittorrent(tmp_path / "qbt") as qbt:
        assert qbt.preferences()["enable_multi_connections_from_same_ip"] is True
        seeder.add(created.data, save_path=dataset.parent)
        seeder.wait_seeding()
        qbt.add(created.data, save_path=down)
        qbt.wait_added(qbt_hash)

        def poke() -> None:
            qbt.add_peer(qbt_hash, seeder.port)
            seeder.connect(created.data, qbt.port)

        state = qbt.wait_complete(qbt_hash, timeout=120, poke=poke)
        assert state["progress"] == 1
    same_tree(dataset, down / "ocean")


@pytest.mark.skipif(not have("aria2c"), reason="aria2c not installed")
def test_aria2_downloads_v1_from_libtorrent_seeder(dataset: Path, tmp_path: Path) -> None:
    created = create_torrent(dataset, version="v1", piece_length=64 * KiB)
    torrent_file = tmp_path / "ocean.torrent"
    created.write(torrent_file)
    down = tmp_path / "aria-down"
    with LibtorrentSession() as seeder:
        seeder.add(created.data, save_path=dataset.parent)
        seeder.wait_seeding()
        with Aria2(torrent_file, down) as aria:

            def poke() -> None:
                if aria.listening():
                    seeder.connect(created.data, aria.port)

            aria.wait_done(timeout=120, poke=poke)
    same_tree(dataset, down / "ocean")


# -- torrents made by other tools parse here with the infohash they report ----------


def _reported_v1(tool: str, torrent: Path) -> str:
    if tool == "transmission-show":
        out = subprocess.run(
            ["transmission-show", str(torrent)], capture_output=True, text=True, check=True
        ).stdout
        m = re.search(r"^\s*Hash: ([0-9a-f]{40})$", out, re.MULTILINE)
    else:
        out = subprocess.run(
            ["aria2c", "-S", str(torrent)], capture_output=True, text=True, check=True
        ).stdout
        m = re.search(r"^Info Hash: ([0-9a-f]{40})$", out, re.MULTILINE)
    assert m is not None, out
    return m.group(1)


@pytest.mark.skipif(not have("mktorrent"), reason="mktorrent not installed")
@pytest.mark.parametrize("target", ["ocean", "ocean/a.csv"])
def test_mktorrent_torrents(dataset: Path, tmp_path: Path, target: str) -> None:
    out = tmp_path / "mk.torrent"
    subprocess.run(
        ["mktorrent", "-a", "http://127.0.0.1:9/announce", "-l", "16", "-t", "2",
         "-w", "http://127.0.0.1:9/seed/", "-c", "made by mktorrent", "-o", str(out),
         str(dataset.parent / target)],
        check=True, capture_output=True,
    )  # fmt: skip
    t = parse_torrent(out.read_bytes(), strict=True)
    assert t.infohash_v1 == _reported_v1("transmission-show", out) == _reported_v1("aria2c", out)
    assert t.comment == "made by mktorrent"
    assert t.webseeds == ["http://127.0.0.1:9/seed/"]
    assert t.piece_length == 64 * KiB
    source = dataset.parent / target
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    assert t.total_size == sum(p.stat().st_size for p in files)


@pytest.mark.skipif(not have("transmission-create"), reason="transmission-create not installed")
def test_transmission_create_torrents(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "tr.torrent"
    subprocess.run(
        ["transmission-create", "-o", str(out), "-t", "http://127.0.0.1:9/announce",
         "-c", "made by transmission", "-s", "32", str(dataset)],
        check=True, capture_output=True,
    )  # fmt: skip
    t = parse_torrent(out.read_bytes())
    assert t.infohash_v1 == _reported_v1("transmission-show", out) == _reported_v1("aria2c", out)
    assert t.comment == "made by transmission"
    assert t.piece_length == 32 * KiB
    assert sorted(f.path for f in t.files) == [
        # transmission-create leaves empty files out
        "ocean/a.csv", "ocean/grid/t0.bin", "ocean/grid/t1.bin", "ocean/z.txt",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags", [lt.create_torrent.v1_only, lt.create_torrent.v2_only, 0], ids=["v1", "v2", "hybrid"]
)
def test_libtorrent_created_torrents(dataset: Path, flags: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        lt.add_files(fs, str(dataset))
        ct = lt.create_torrent(fs, 32 * KiB, flags=flags)
        ct.add_tracker("http://127.0.0.1:9/announce")
        ct.add_url_seed("http://127.0.0.1:9/seed/")
    lt.set_piece_hashes(ct, str(dataset.parent))
    data = lt.bencode(ct.generate())
    hashes = lt.torrent_info(data).info_hashes()
    t = parse_torrent(data, strict=True)
    assert t.infohash_v1 == (str(hashes.v1) if hashes.has_v1() else None)
    assert t.infohash_v2 == (str(hashes.v2) if hashes.has_v2() else None)
    assert t.trackers == [["http://127.0.0.1:9/announce"]]
    assert t.total_size == sum(p.stat().st_size for p in dataset.rglob("*") if p.is_file())
    # and the data it describes verifies here
    from holdfast.torrents.verify import verify_data

    assert verify_data(t, dataset.parent).ok
