"""Reading zarr arrays from a real swarm: a libtorrent seeder in another process.

Two ~100 MiB zarr v3 arrays, one of 512 KiB chunks and one of 10 MiB shards of 128 KiB
inner chunks, each in its own v2 torrent; the plain one aligned to its chunks, the
sharded one with 16 KiB pieces (smaller than an inner chunk, so a chunk costs at most
two partly used pieces). Reads go through a libtorrent session in this process, which
must move only the pieces that hold the chunks asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")

from holdfast.arrays.errors import SourceError  # noqa: E402
from holdfast.arrays.peers import LibtorrentFetcher, PeerOptions  # noqa: E402
from holdfast.arrays.sources import open_reader, open_zarr  # noqa: E402
from holdfast.arrays.store import TorrentStore  # noqa: E402
from holdfast.torrents import create_torrent  # noqa: E402
from tests.arrays.rangeserver import RangeServer  # noqa: E402

pytestmark = pytest.mark.interop

SHAPE = (200, 512, 512)  # uint16: 100 MiB per array
REPO = Path(__file__).resolve().parents[2]
LOOPBACK = PeerOptions(listen="127.0.0.1:0", grace=3.0, timeout=20.0)


class Seeder:
    """tests/arrays/seeder.py in a child process; stopped by its PID."""

    def __init__(self, save_path: Path, torrents: list[Path]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.arrays.seeder", str(save_path), *map(str, torrents)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the seeder process exited before seeding")
        self.port = int(json.loads(line)["port"])

    def uploaded(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return int(json.loads(self.process.stdout.readline())["total"])

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Swarm:
    root: Path
    data: Any
    seeder: Seeder
    torrents: dict[str, Path]  # "frames" / "sharded" -> .torrent on disk
    server: RangeServer  # web seed of the same files (not listed in the torrents)

    def chunk_sizes(self, array: str) -> dict[str, int]:
        base = self.root / array
        return {
            p.relative_to(base).as_posix(): p.stat().st_size
            for p in base.rglob("*")
            if p.is_file() and p.name != "zarr.json"
        }


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    root = tmp_path_factory.mktemp("swarm")
    rng = np.random.default_rng(11)
    data = rng.integers(0, 1 << 16, size=SHAPE, dtype="uint16")
    plain = zarr.create_array(
        root / "frames.zarr", shape=SHAPE, chunks=(1, 512, 512), dtype="uint16"
    )
    plain[:] = data
    sharded = zarr.create_array(
        root / "sharded.zarr",
        shape=SHAPE,
        chunks=(1, 256, 256),
        shards=(20, 512, 512),
        dtype="uint16",
    )
    sharded[:] = data
    torrents = {
        "frames": root / "frames.torrent",
        "sharded": root / "sharded.torrent",
    }
    create_torrent(root / "frames.zarr", version="v2", align="zarr").write(torrents["frames"])
    create_torrent(root / "sharded.zarr", version="v2", piece_length=16384).write(
        torrents["sharded"]
    )
    seeder = Seeder(root, list(torrents.values()))
    try:
        with RangeServer(root) as server:
            yield Swarm(root, data, seeder, torrents, server)
    finally:
        seeder.stop()


def _reader(swarm: Swarm, name: str, **kwargs: Any) -> Any:
    kwargs.setdefault("peers", [("127.0.0.1", swarm.seeder.port)])
    kwargs.setdefault("peer_options", LOOPBACK)
    return open_reader(swarm.torrents[name], swarm=True, **kwargs)


def test_plain_array_slices_come_from_the_peer_and_only_their_chunks(swarm: Swarm) -> None:
    sizes = swarm.chunk_sizes("frames.zarr")
    with _reader(swarm, "frames") as reader:
        fetcher = reader.fetcher
        assert isinstance(fetcher, LibtorrentFetcher)
        array = zarr.open_array(TorrentStore(reader, "frames.zarr"), mode="r")
        assert array.shape == SHAPE
        for selection, frames in [
            ((slice(10, 13),), [10, 11, 12]),
            ((150, slice(0, 100)), [150]),
            ((slice(198, 200), 7, 9), [198, 199]),
        ]:
            before = swarm.seeder.uploaded()
            np.testing.assert_array_equal(array[selection], swarm.data[selection])
            moved = swarm.seeder.uploaded() - before
            needed = sum(sizes[f"c/{f}/0/0"] for f in frames)
            assert needed <= moved <= 1.25 * needed, (selection, moved, needed)
        totals = fetcher.refresh_stats()
        assert totals.webseed_pieces == 0 and totals.from_webseeds == 0
        assert totals.peer_pieces > 0
        # everything the session downloaded was for the slices above
        needed_all = sum(sizes[f"c/{f}/0/0"] for f in [10, 11, 12, 150, 198, 199])
        assert totals.from_peers <= 1.25 * (needed_all + sizes_of_metadata(swarm, "frames.zarr"))


def test_pieces_read_before_are_read_again_without_the_cache(swarm: Swarm) -> None:
    """With no piece cache a second read of a chunk finds its pieces already in the
    session: they come back from libtorrent without moving them again."""
    with _reader(swarm, "frames", cache_bytes=0) as reader:
        array = zarr.open_array(TorrentStore(reader, "frames.zarr"), mode="r")
        np.testing.assert_array_equal(array[60], swarm.data[60])
        before = swarm.seeder.uploaded()
        for _ in range(3):
            np.testing.assert_array_equal(array[60], swarm.data[60])
        assert swarm.seeder.uploaded() == before
        totals = reader.fetcher.refresh_stats()
        assert totals.webseed_pieces == 0
        assert len(reader.cache) == 0


@pytest.mark.parametrize("webseed", [True, False])
def test_a_spoilt_copy_in_the_session_is_never_handed_over(swarm: Swarm, webseed: bool) -> None:
    """A finished piece is read from the session's files; bytes that fail their check
    there (and in libtorrent's own read of them) come from the web seed, or fail."""
    extra: dict[str, Any] = {"webseeds": [swarm.server.url]} if webseed else {}
    with _reader(swarm, "frames", cache_bytes=0, **extra) as reader:
        array = zarr.open_array(TorrentStore(reader, "frames.zarr"), mode="r")
        np.testing.assert_array_equal(array[70], swarm.data[70])
        copy = Path(reader.fetcher._workdir) / "frames.zarr" / "c" / "70" / "0" / "0"
        spoilt = bytearray(copy.read_bytes())
        spoilt[100:200] = bytes(100)
        copy.write_bytes(bytes(spoilt))
        if webseed:
            np.testing.assert_array_equal(array[70], swarm.data[70])
            assert reader.fetcher.refresh_stats().webseed_pieces > 0
        else:
            with pytest.raises(SourceError, match="failed its check"):
                array[70]


def sizes_of_metadata(swarm: Swarm, array: str) -> int:
    return (swarm.root / array / "zarr.json").stat().st_size + 16384


def test_sharded_array_reads_inner_chunks_from_the_peer(swarm: Swarm) -> None:
    shard = swarm.chunk_sizes("sharded.zarr")["c/1/0/0"]
    with _reader(swarm, "sharded") as reader:
        array = zarr.open_array(TorrentStore(reader, "sharded.zarr"), mode="r")
        assert array.shards == (20, 512, 512)
        np.testing.assert_array_equal(array[0, 0, 0], swarm.data[0, 0, 0])  # warm up
        # one frame: 4 inner chunks of one shard, plus that shard's index
        before = swarm.seeder.uploaded()
        np.testing.assert_array_equal(array[25], swarm.data[25])
        moved = swarm.seeder.uploaded() - before
        inner = shard / 20  # random data: inner chunks are all about the same size
        assert moved <= 1.25 * inner + 16384 * 2, (moved, inner)
        assert moved < 0.2 * shard
        # one inner chunk
        before = swarm.seeder.uploaded()
        np.testing.assert_array_equal(array[190, 256:, :256], swarm.data[190, 256:, :256])
        moved = swarm.seeder.uploaded() - before
        assert moved <= 1.25 * inner / 4 + 16384 * 2, (moved, inner / 4)
        # a range over shard boundaries equals the source
        np.testing.assert_array_equal(array[18:42:3, 100:400], swarm.data[18:42:3, 100:400])
        assert reader.fetcher.refresh_stats().webseed_pieces == 0


def test_pieces_no_peer_has_come_from_the_web_seed(swarm: Swarm) -> None:
    options = PeerOptions(listen="127.0.0.1:0", grace=0.2, timeout=5.0)
    with _reader(
        swarm, "frames", peers=[], peer_options=options, webseeds=[swarm.server.url]
    ) as reader:
        array = zarr.open_array(TorrentStore(reader, "frames.zarr"), mode="r")
        np.testing.assert_array_equal(array[40:42], swarm.data[40:42])
        totals = reader.fetcher.refresh_stats()
        assert totals.from_peers == 0
        assert totals.webseed_pieces > 0
        needed = sum(swarm.chunk_sizes("frames.zarr")[f"c/{f}/0/0"] for f in (40, 41))
        assert needed <= totals.from_webseeds <= 1.25 * needed + 16384


def test_a_magnet_link_reads_metadata_and_pieces_from_peers(swarm: Swarm) -> None:
    from holdfast.torrents import parse_torrent

    torrent = parse_torrent(swarm.torrents["sharded"].read_bytes())
    magnet = f"magnet:?xt=urn:btmh:1220{torrent.infohash_v2}&x.pe=127.0.0.1:{swarm.seeder.port}"
    array = open_zarr(magnet, "sharded.zarr", peer_options=LOOPBACK)
    try:
        # a v2 torrent from a magnet link has no piece layers: libtorrent checks pieces
        assert array.store.reader.torrent.piece_layers == {}
        np.testing.assert_array_equal(array[77, 10:20], swarm.data[77, 10:20])
    finally:
        array.store.reader.close()


def test_hdf5_in_a_torrent_is_read_lazily_from_the_peer(swarm: Swarm, tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    from holdfast.arrays.fs import TorrentFileSystem

    folder = tmp_path / "nwb"
    folder.mkdir()
    with h5py.File(folder / "session.h5", "w") as handle:
        handle.create_dataset("frames", data=swarm.data[:40], chunks=(1, 512, 512))
    (folder / "README.txt").write_text("two-photon frames\n")
    path = tmp_path / "nwb.torrent"
    create_torrent(folder, version="v2", piece_length=65536).write(path)
    seeder = Seeder(tmp_path, [path])
    try:
        with open_reader(
            path, swarm=True, peers=[("127.0.0.1", seeder.port)], peer_options=LOOPBACK
        ) as reader:
            fs = TorrentFileSystem(reader)
            with fs.open("nwb/session.h5") as handle, h5py.File(handle, "r") as h5:
                np.testing.assert_array_equal(h5["frames"][33], swarm.data[33])
            moved = seeder.uploaded()
            assert 0 < moved < 0.1 * (folder / "session.h5").stat().st_size
    finally:
        seeder.stop()
