"""Seeding throughput to qbittorrent-nox on loopback: the instance's seeder against a
plain libtorrent session, in the same run.

    python benchmarks/seeding.py [--size-mib 512] [--rounds 2] [--version hybrid]

Makes one file of random bytes and its torrent, then, for each round and each seeder
in turn, starts a fresh qbittorrent-nox (its own profile, TCP only, 127.0.0.1), adds
the torrent, points it at the seeder, and times the download from the moment it is
added until qBittorrent reports 100%. Each download is bounded (--timeout seconds).

- "instance seeder": holdfast.seeding.seeder.Seeder of a real instance (SQLite
  catalogue, the upload approved, its data in the storage folder), with the settings
  `holdfast serve` gives it on 127.0.0.1.
- "plain libtorrent": a libtorrent session with the loopback settings of the notes
  (uTP, DHT, LSD, UPnP, NAT-PMP off; many connections per IP), seeding the same file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from holdfast.accounts.models import Role
from holdfast.catalogue.schemas import DatasetIn, UploadIn
from holdfast.db.migrate import upgrade
from holdfast.instance import Instance
from holdfast.seeding.seeder import Seeder
from holdfast.seeding.storage import upload_folder
from holdfast.settings import Settings
from holdfast.torrents import create_torrent
from tests.torrents.clients import LibtorrentSession, QBittorrent, wait_until


def make_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size >> 20):
            f.write(bytes([i & 0xFF]) + block[1:])


def instance_seeder(root: Path, source: Path, torrent: bytes) -> tuple[Seeder, int]:
    settings = Settings(
        data_dir=root / "instance",
        config_file=root / "none.toml",
        seeder_port=0,
        federation=False,
        run_jobs=False,
    ).prepare()
    upgrade(settings.resolved_database_url)
    instance = Instance.build(settings)
    account = instance.accounts.register(
        "bench", "correct horse battery staple", role=Role.uploader, trusted=True
    )
    instance.catalogue.create_dataset(account, DatasetIn(title="Bench", slug="bench"))
    with instance.db.write() as s:
        from holdfast.catalogue.models import Dataset

        s.query(Dataset).one().status = "approved"
    upload = instance.catalogue.create_upload(account, UploadIn(dataset="bench"), torrent)
    folder = upload_folder(settings.resolved_storage_dir, upload.infohash)
    folder.mkdir(parents=True)
    os.link(source, folder / source.name)
    seeder = Seeder(settings, instance.db)
    seeder.start()
    wait_until(
        lambda: (st := seeder.state(upload.id)) is not None and st.state == "seeding",
        600,
        "the instance's seeder to check its data",
    )
    return seeder, upload.id


def download(
    root: Path, torrent: bytes, qbt_hash: str, port: int, size: int, timeout: float
) -> float:
    profile = Path(tempfile.mkdtemp(prefix="qbt-", dir=root))
    with QBittorrent(profile) as qbt:
        started = time.monotonic()
        qbt.add(torrent, profile / "down")
        qbt.wait_added(qbt_hash)
        qbt.add_peer(qbt_hash, port)
        qbt.wait_complete(qbt_hash, timeout=timeout, poke=lambda: qbt.add_peer(qbt_hash, port))
        elapsed = time.monotonic() - started
    shutil.rmtree(profile, ignore_errors=True)
    return size / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--version", choices=["v1", "v2", "hybrid"], default="hybrid")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    size = args.size_mib << 20
    root = Path(tempfile.mkdtemp(prefix="hf-seeding-bench-"))
    try:
        source = root / "data" / "payload.bin"
        make_file(source, size)
        torrent = create_torrent(source, version=args.version).data
        from holdfast.torrents import parse_torrent

        t = parse_torrent(torrent)
        qbt_hash = t.infohash_v2_truncated or t.infohash_v1 or ""
        seeder, _upload_id = instance_seeder(root, source, torrent)
        plain = LibtorrentSession()
        plain.add(torrent, source.parent)
        plain.wait_seeding(torrent, timeout=600)
        results: dict[str, list[float]] = {"instance seeder": [], "plain libtorrent": []}
        try:
            for _ in range(args.rounds):
                for name, port in (
                    ("instance seeder", seeder.port),
                    ("plain libtorrent", plain.port),
                ):
                    rate = download(root, torrent, qbt_hash, port, size, args.timeout)
                    results[name].append(rate)
                    print(f"{name:17s} {rate:7.1f} MB/s", flush=True)
        finally:
            plain.close()
            seeder.stop()
        print(
            f"\n{args.size_mib} MiB {args.version} torrent, qbittorrent-nox on 127.0.0.1, TCP only"
        )
        print("| seeder | MB/s (each round) | best |")
        print("|---|---|---|")
        for name, rates in results.items():
            each = ", ".join(f"{r:.0f}" for r in rates)
            print(f"| {name} | {each} | {max(rates):.0f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
