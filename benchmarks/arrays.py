"""Streaming zarr reads from a web seed and from a BitTorrent peer: holdfast's reader
against plain HTTP (fsspec) and against downloading the whole torrent (libtorrent).

    python benchmarks/arrays.py [--frames 200] [--reads 200]

Builds a ~100 MiB zarr v3 dataset (one array with one 512 KiB chunk per frame, one
sharded: 256x256 inner chunks in 16-frame shards), a hybrid torrent aligned to its chunks,
and serves it from a Range-capable HTTP server on 127.0.0.1 and from a libtorrent seeder
in another process (tests/arrays/seeder.py), then from a holdfast instance's own seeder
(`holdfast publish --align zarr` to an instance in a child process, read by its upload
URL). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from holdfast.arrays.peers import PeerOptions
from holdfast.arrays.sources import open_reader, open_zarr
from holdfast.torrents import create_torrent
from tests.arrays.rangeserver import RangeServer
from tests.arrays.test_swarm import Seeder

LOOPBACK = PeerOptions(listen="127.0.0.1:0")


def build(root: Path, frames: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    # 12 bits of noise on a slow ramp: compresses a little, like camera frames
    data = (
        rng.integers(0, 4096, size=(frames, 512, 512), dtype=np.uint16)
        + np.arange(frames, dtype=np.uint16)[:, None, None]
    )
    plain = zarr.create_array(
        root / "ds/frames.zarr", shape=data.shape, chunks=(1, 512, 512), dtype="uint16"
    )
    plain[:] = data
    sharded = zarr.create_array(
        root / "ds/sharded.zarr",
        shape=data.shape,
        chunks=(1, 256, 256),
        shards=(16, 512, 512),
        dtype="uint16",
    )
    sharded[:] = data
    return data


def chunk_bytes(root: Path, array: str, keys: list[str]) -> int:
    return sum((root / "ds" / array / key).stat().st_size for key in keys)


def first_slice_holdfast(
    torrent_path: Path, server: RangeServer, array: str, seed: Path | None
) -> tuple[float, int]:
    server.stats.reset()
    start = time.perf_counter()
    reader = open_reader(torrent_path)
    if seed is not None:
        reader.seed_file(f"ds/{array}/zarr.json", seed.read_bytes())
    arr = open_zarr(reader, f"ds/{array}")
    arr[0]
    elapsed = time.perf_counter() - start
    reader.close()
    return elapsed, server.stats.bytes_sent


def first_slice_peer(
    torrent_path: Path, seeder: Seeder, array: str, seed: Path | None
) -> tuple[float, int, int]:
    """(seconds, bytes the seeder sent, bytes taken from web seeds) for frame 0."""
    before = seeder.uploaded()
    start = time.perf_counter()
    reader = open_reader(
        torrent_path, swarm=True, peers=[("127.0.0.1", seeder.port)], peer_options=LOOPBACK
    )
    if seed is not None:
        reader.seed_file(f"ds/{array}/zarr.json", seed.read_bytes())
    arr = open_zarr(reader, f"ds/{array}")
    arr[0]
    elapsed = time.perf_counter() - start
    web = reader.fetcher.refresh_stats().from_webseeds
    reader.close()
    return elapsed, seeder.uploaded() - before, web


def whole_download_peer(torrent_data: bytes, save: Path, seeder: Seeder) -> tuple[float, int]:
    import libtorrent as lt

    before = seeder.uploaded()
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent_data))
    params.save_path = str(save)
    params.url_seeds = []
    params.flags |= lt.torrent_flags.override_web_seeds
    params.peers = [("127.0.0.1", seeder.port)]
    start = time.perf_counter()
    handle = session.add_torrent(params)
    deadline = start + 300
    while not handle.status().is_seeding:
        if time.perf_counter() > deadline:
            raise RuntimeError("libtorrent did not finish in 300 s")
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    session.remove_torrent(handle)
    return elapsed, seeder.uploaded() - before


def first_slice_fsspec(server: RangeServer, array: str) -> tuple[float, int]:
    server.stats.reset()
    start = time.perf_counter()
    store = zarr.storage.FsspecStore.from_url(server.url + f"ds/{array}", read_only=True)
    arr = zarr.open_array(store, mode="r")
    arr[0]
    return time.perf_counter() - start, server.stats.bytes_sent


def random_reads(arr: zarr.Array, indices: list[int]) -> float:
    start = time.perf_counter()
    for i in indices:
        arr[i]
    return len(indices) / (time.perf_counter() - start)


def whole_download_libtorrent(
    torrent_data: bytes, save: Path, server: RangeServer
) -> tuple[float, int]:
    import libtorrent as lt

    server.stats.reset()
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent_data))
    params.save_path = str(save)
    start = time.perf_counter()
    handle = session.add_torrent(params)
    deadline = start + 300
    while not handle.status().is_seeding:
        if time.perf_counter() > deadline:
            raise RuntimeError("libtorrent did not finish in 300 s")
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    session.remove_torrent(handle)
    return elapsed, server.stats.bytes_sent


def peer_rows(
    args: argparse.Namespace,
    tmp: Path,
    torrent_path: Path,
    small_path: Path,
    seeder: Seeder,
    needs: dict[str, tuple[int, int]],
    data: np.ndarray,
    http_rate: float,
) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for array, path, label in (
        ("frames.zarr", torrent_path, "frame 0 (one chunk)"),
        ("sharded.zarr", small_path, f"frame 0 (4 inner chunks), {args.small_pieces} KiB pieces"),
    ):
        needed, meta = needs[array]
        for seed, what in (
            (None, label),
            (tmp / "src/ds" / array / "zarr.json", "zarr.json from the instance"),
        ):
            times, moved, web = [], 0, 0
            for _ in range(args.repeat):
                elapsed, moved, web = first_slice_peer(path, seeder, array, seed)
                times.append(elapsed)
            want = needed - (meta if seed is not None else 0)
            rows.append(
                (
                    f"{array}: first slice, {what}",
                    "holdfast, peer",
                    f"{statistics.median(times) * 1000:.0f} ms",
                    f"{moved:,} B ({moved / want:.2f}x needed; {web} B from web seeds)",
                )
            )
    indices = random.Random(3).sample(range(args.frames), min(args.reads, args.frames))
    reader = open_reader(
        torrent_path,
        swarm=True,
        peers=[("127.0.0.1", seeder.port)],
        peer_options=LOOPBACK,
        cache_bytes=0,
    )
    arr = open_zarr(reader, "ds/frames.zarr")
    np.testing.assert_array_equal(arr[indices[0]], data[indices[0]])
    rate = random_reads(arr, indices[1:])
    reader.close()
    rows.append(
        (
            "random single-chunk reads (512 KiB chunks)",
            "holdfast, peer, no cache",
            f"{rate:.0f} /s",
            f"{rate / http_rate:.2f}x fsspec",
        )
    )
    elapsed, moved = whole_download_peer(torrent_path.read_bytes(), tmp / "lt-peer", seeder)
    rows.append(
        (
            "whole torrent, then frame 0",
            "libtorrent 2.1, peer",
            f"{elapsed * 1000:.0f} ms",
            f"{moved:,} B",
        )
    )
    return rows


def instance_rows(
    args: argparse.Namespace,
    tmp: Path,
    data: np.ndarray,
    needs: dict[str, tuple[int, int]],
    http_rate: float,
) -> list[tuple[str, str, str, str]]:
    """The same reads from a holdfast instance's own seeder (a `holdfast serve` child
    process on 127.0.0.1), opened by the upload URL: the torrent and zarr.json come
    from the instance, pieces from its seeder."""
    import subprocess

    import httpx

    from holdfast.settings import Settings
    from tests.federation.interop.instances import InstanceProcess, wait_until
    from tests.web.live import free_port

    workdir = tmp / "instance"
    workdir.mkdir()
    seeder_port = free_port()
    values = {"seeder": True, "seeder_port": seeder_port, "run_jobs": False}
    rows: list[tuple[str, str, str, str]] = []
    with InstanceProcess(workdir, name="bench", **values) as instance:
        data_dir, config = instance.settings_values["data_dir"], workdir / "no-config.toml"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDFAST_")}

        def holdfast(*argv: str, **extra: str) -> str:
            r = subprocess.run(
                [sys.executable, "-m", "holdfast", *argv],
                capture_output=True,
                text=True,
                env=env | extra,
                timeout=600,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if r.returncode != 0:
                raise RuntimeError(f"holdfast {argv[0]} failed: {r.stderr}")
            return r.stdout

        token = holdfast(
            "admin", "create-account", "bench", "--role", "uploader", "--token",
            "--data-dir", str(data_dir), "--config-file", str(config),
        ).strip().splitlines()[-1]  # fmt: skip
        storage = Settings(data_dir=data_dir, config_file=config).resolved_storage_dir
        out = holdfast(
            "publish", str(tmp / "src/ds"), "--to", instance.base_url, "--title", "Frames",
            "--align", "zarr", "--storage-dir", str(storage), "--quiet", HOLDFAST_TOKEN=token,
        )  # fmt: skip
        ih = next(line.split()[-1] for line in out.splitlines() if "infohash" in line)
        wait_until(
            lambda: (
                httpx.get(f"{instance.base_url}/api/v1/uploads/{ih}/seeding").json()["state"]
                == "seeding"
            ),
            timeout=120,
            what="the instance's seeder",
        )
        source = f"{instance.base_url}/uploads/{ih}"
        peers = [("127.0.0.1", seeder_port)]
        for array in ("frames.zarr", "sharded.zarr"):
            needed, meta = needs[array]
            times, moved, web = [], 0, 0
            for _ in range(args.repeat):
                start = time.perf_counter()
                reader = open_reader(source, swarm=True, peers=peers, peer_options=LOOPBACK)
                arr = open_zarr(reader, f"ds/{array}")
                np.testing.assert_array_equal(arr[0], data[0])
                times.append(time.perf_counter() - start)
                totals = reader.fetcher.refresh_stats()
                moved, web = totals.from_peers, totals.from_webseeds
                reader.close()
            rows.append(
                (
                    f"{array}: first slice, frame 0, upload URL (torrent and zarr.json "
                    "from the instance)",
                    "holdfast, instance's seeder",
                    f"{statistics.median(times) * 1000:.0f} ms",
                    f"{moved:,} B ({moved / (needed - meta):.2f}x needed; {web} B from web seeds)",
                )
            )
        indices = random.Random(3).sample(range(args.frames), min(args.reads, args.frames))
        reader = open_reader(source, swarm=True, peers=peers, peer_options=LOOPBACK, cache_bytes=0)
        arr = open_zarr(reader, "ds/frames.zarr")
        np.testing.assert_array_equal(arr[indices[0]], data[indices[0]])
        rate = random_reads(arr, indices[1:])
        web = reader.fetcher.refresh_stats().from_webseeds
        reader.close()
        rows.append(
            (
                "random single-chunk reads (512 KiB chunks)",
                "holdfast, instance's seeder, no cache",
                f"{rate:.0f} /s",
                f"{rate / http_rate:.2f}x fsspec; {web} B from web seeds",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small-pieces", type=int, default=16, help="KiB, for the sharded row")
    parser.add_argument(
        "--no-instance", action="store_true", help="Leave out the instance's seeder rows."
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="holdfast-bench-arrays-"))
    try:
        data = build(tmp / "src", args.frames)
        total = sum(p.stat().st_size for p in (tmp / "src/ds").rglob("*") if p.is_file())
        with RangeServer(tmp / "src") as server:
            created = create_torrent(
                tmp / "src/ds", version="hybrid", align="zarr", webseeds=[server.url]
            )
            torrent_path = tmp / "ds.torrent"
            created.write(torrent_path)
            rows: list[tuple[str, str, str, str]] = []
            needs: dict[str, tuple[int, int]] = {}  # array -> (needed bytes, zarr.json size)

            for array, needed_keys in (
                ("frames.zarr", ["c/0/0/0"]),
                ("sharded.zarr", ["c/0/0/0"]),
            ):
                chunk = chunk_bytes(tmp / "src", array, needed_keys)
                meta = (tmp / "src/ds" / array / "zarr.json").stat().st_size
                if array == "sharded.zarr":
                    # frame 0 is the first 4 of the shard's 64 inner chunks, plus the index
                    # (64 x (offset, length) uint64 and a CRC32C) at the end of the shard
                    raw = (tmp / "src/ds" / array / "c/0/0/0").read_bytes()
                    index = np.frombuffer(raw[-(64 * 16 + 4) : -4], dtype="<u8").reshape(64, 2)
                    needed = int(index[:4, 1].sum()) + 64 * 16 + 4 + meta
                    label = "frame 0 (4 inner chunks of a shard)"
                else:
                    needed = chunk + meta
                    label = "frame 0 (one chunk)"
                needs[array] = (needed, meta)
                times, moved = [], 0
                for _ in range(args.repeat):
                    elapsed, moved = first_slice_holdfast(torrent_path, server, array, None)
                    times.append(elapsed)
                seeded_times, seeded_moved = [], 0
                for _ in range(args.repeat):
                    elapsed, seeded_moved = first_slice_holdfast(
                        torrent_path, server, array, tmp / "src/ds" / array / "zarr.json"
                    )
                    seeded_times.append(elapsed)
                http_times, http_moved = [], 0
                for _ in range(args.repeat):
                    elapsed, http_moved = first_slice_fsspec(server, array)
                    http_times.append(elapsed)
                rows.append(
                    (
                        f"{array}: first slice, {label}",
                        "holdfast, web seed",
                        f"{statistics.median(times) * 1000:.0f} ms",
                        f"{moved:,} B ({moved / needed:.2f}x needed)",
                    )
                )
                rows.append(
                    (
                        f"{array}: first slice, zarr.json from the instance",
                        "holdfast, web seed",
                        f"{statistics.median(seeded_times) * 1000:.0f} ms",
                        f"{seeded_moved:,} B ({seeded_moved / (needed - meta):.2f}x needed)",
                    )
                )
                rows.append(
                    (
                        f"{array}: first slice",
                        "fsspec HTTP",
                        f"{statistics.median(http_times) * 1000:.0f} ms",
                        f"{http_moved:,} B ({http_moved / needed:.2f}x needed)",
                    )
                )

            # the same shards in a torrent whose pieces are about one inner chunk
            small = create_torrent(
                tmp / "src/ds",
                version="hybrid",
                piece_length=args.small_pieces * 1024,
                webseeds=[server.url],
            )
            small_path = tmp / "small.torrent"
            small.write(small_path)
            times = []
            for _ in range(args.repeat):
                elapsed, moved = first_slice_holdfast(small_path, server, "sharded.zarr", None)
                times.append(elapsed)
            rows.append(
                (
                    f"sharded.zarr: first slice, {args.small_pieces} KiB pieces",
                    "holdfast, web seed",
                    f"{statistics.median(times) * 1000:.0f} ms",
                    f"{moved:,} B ({moved / needed:.2f}x needed)",
                )
            )

            indices = random.Random(3).sample(range(args.frames), min(args.reads, args.frames))
            reader = open_reader(torrent_path, cache_bytes=0)
            ours = random_reads(open_zarr(reader, "ds/frames.zarr"), indices)
            reader.close()
            plain = zarr.open_array(
                zarr.storage.FsspecStore.from_url(server.url + "ds/frames.zarr", read_only=True),
                mode="r",
            )
            theirs = random_reads(plain, indices)
            rows.append(
                (
                    "random single-chunk reads (512 KiB chunks)",
                    "holdfast, web seed, no cache",
                    f"{ours:.0f} /s",
                    f"{ours / theirs:.2f}x fsspec",
                )
            )
            rows.append(
                (
                    "random single-chunk reads (512 KiB chunks)",
                    "fsspec HTTP",
                    f"{theirs:.0f} /s",
                    "",
                )
            )

            elapsed, moved = whole_download_libtorrent(
                torrent_path.read_bytes(), tmp / "lt", server
            )
            rows.append(
                (
                    "whole torrent, then frame 0",
                    "libtorrent 2.1, web seed",
                    f"{elapsed * 1000:.0f} ms",
                    f"{moved:,} B (all {total:,} B)",
                )
            )

            reader = open_reader(torrent_path)
            np.testing.assert_array_equal(open_zarr(reader, "ds/sharded.zarr")[5:7], data[5:7])
            reader.close()

            # the same reads from a BitTorrent peer in another process
            seeder = Seeder(tmp / "src", [torrent_path, small_path])
            try:
                rows.extend(
                    peer_rows(args, tmp, torrent_path, small_path, seeder, needs, data, theirs)
                )
            finally:
                seeder.stop()
            if not args.no_instance:
                rows.extend(instance_rows(args, tmp, data, needs, theirs))

        print(
            f"dataset: {args.frames} x 512 x 512 uint16 ({data.nbytes / 2**20:.0f} MiB) twice; "
            f"torrent {created.torrent.piece_length // 1024} KiB pieces, "
            f"{total / 2**20:.0f} MiB of files\n"
        )
        print("| measure | reader | time / rate | bytes moved |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
