"""Reading zarr arrays and other files of a torrent from a web seed, piece by piece."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")
pytest.importorskip("fsspec")

from holdfast.arrays.errors import (  # noqa: E402
    FileNotInTorrent,
    PieceHashMismatch,
    PieceUnavailable,
)
from holdfast.arrays.fs import TorrentFileSystem  # noqa: E402
from holdfast.arrays.source import TorrentReader  # noqa: E402
from holdfast.arrays.store import TorrentStore  # noqa: E402
from holdfast.arrays.webseed import WebseedFetcher  # noqa: E402
from holdfast.torrents import create_torrent  # noqa: E402
from tests.arrays.conftest import Dataset  # noqa: E402
from tests.arrays.rangeserver import RangeServer  # noqa: E402

VERSIONS = ["v1", "v2", "hybrid"]


def open_reader(dataset: Dataset, version: str, **kwargs: object) -> TorrentReader:
    torrent = dataset.torrents[version]
    return TorrentReader(torrent, WebseedFetcher(torrent), **kwargs)  # type: ignore[arg-type]


def pieces_bytes(reader: TorrentReader, paths: list[str]) -> int:
    """Bytes of real data in the pieces that hold these files."""
    indices: set[int] = set()
    for path in paths:
        index = reader.pieces.file_index(path)
        indices.update(reader.pieces.pieces_for(index, 0, reader.pieces.file(index).size))
    return sum(reader.pieces.piece(i).data_bytes for i in indices)


@pytest.mark.parametrize("version", VERSIONS)
def test_plain_array_slices_fetch_only_their_chunks(dataset: Dataset, version: str) -> None:
    with open_reader(dataset, version) as reader:
        array = zarr.open_array(TorrentStore(reader, "ds/frames.zarr"), mode="r")
        assert array.shape == dataset.data.shape
        chunk_sizes = dataset.chunk_files("frames.zarr")
        for selection, chunks in [
            ((slice(10, 14),), ["c/2/0/0", "c/3/0/0"]),
            ((63,), ["c/15/0/0"]),
            ((slice(0, 2), 5), ["c/0/0/0"]),
        ]:
            dataset.server.stats.reset()
            got = array[selection]
            np.testing.assert_array_equal(got, dataset.data[selection])
            needed = sum(chunk_sizes[f"ds/frames.zarr/{c}"] for c in chunks)
            moved = dataset.server.stats.bytes_sent
            assert needed <= moved <= 1.25 * needed, (selection, moved, needed)


@pytest.mark.parametrize("version", VERSIONS)
def test_sharded_array_reads_part_of_a_shard(dataset: Dataset, version: str) -> None:
    with open_reader(dataset, version) as reader:
        array = zarr.open_array(TorrentStore(reader, "ds/sharded.zarr"), mode="r")
        assert array.shards == (16, 128, 128)
        shard_size = dataset.chunk_files("sharded.zarr")["ds/sharded.zarr/c/1/0/0"]
        dataset.server.stats.reset()
        # one inner chunk: the shard index and the pieces holding that chunk, not the shard
        np.testing.assert_array_equal(array[20, :64, :64], dataset.data[20, :64, :64])
        assert 0 < dataset.server.stats.bytes_sent < 0.75 * shard_size
        np.testing.assert_array_equal(array[:], dataset.data)


def test_whole_arrays_equal_the_source_for_an_unaligned_v1_torrent(
    dataset: Dataset, tmp_path: Path
) -> None:
    # Without alignment a v1 piece holds the end of one file and the start of the next,
    # so pieces are assembled from several files and checked by SHA-1 as a whole.
    torrent = create_torrent(
        dataset.root / "ds", version="v1", piece_length=32 * 1024, webseeds=[dataset.server.url]
    ).torrent
    assert any(len(torrent.files_in_piece(i)) > 1 for i in range(torrent.num_pieces))
    with TorrentReader(torrent, WebseedFetcher(torrent)) as reader:
        for name in ("frames.zarr", "sharded.zarr"):
            array = zarr.open_array(TorrentStore(reader, f"ds/{name}"), mode="r")
            np.testing.assert_array_equal(array[:], dataset.data)
        for path in reader.walk_files("ds"):
            assert reader.read(path) == (dataset.root / path).read_bytes()


def test_seeded_metadata_opens_without_fetching(dataset: Dataset) -> None:
    with open_reader(dataset, "hybrid") as reader:
        metadata = (dataset.root / "ds/frames.zarr/zarr.json").read_bytes()
        assert not reader.seed_file(
            "ds/frames.zarr/zarr.json", metadata.replace(b"uint16", b"uint32")
        )
        assert not reader.seed_file("ds/frames.zarr/zarr.json", metadata + b" ")
        assert reader.seed_file("ds/frames.zarr/zarr.json", metadata)
        dataset.server.stats.reset()
        array = zarr.open_array(TorrentStore(reader, "ds/frames.zarr"), mode="r")
        assert array.dtype == np.dtype("uint16")
        assert dataset.server.stats.requests == 0
        assert reader.fetcher.stats.requests == 0


def test_corrupt_web_seed_is_refused_and_a_good_one_used(dataset: Dataset, tmp_path: Path) -> None:
    bad_root = tmp_path / "bad"
    shutil.copytree(dataset.root / "ds", bad_root / "ds")
    chunk = bad_root / "ds/frames.zarr/c/5/0/0"
    raw = bytearray(chunk.read_bytes())
    raw[100] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    torrent = dataset.torrents["hybrid"]
    with RangeServer(bad_root) as bad:
        with TorrentReader(torrent, WebseedFetcher(torrent, [bad.url])) as reader:
            with pytest.raises(PieceHashMismatch, match="match the torrent's hash"):
                reader.read("ds/frames.zarr/c/5/0/0")
            # the untouched chunks from the same server are fine
            assert (
                reader.read("ds/frames.zarr/c/4/0/0")
                == (dataset.root / "ds/frames.zarr/c/4/0/0").read_bytes()
            )
            assert len(reader.cache) > 0
        fetcher = WebseedFetcher(torrent, [bad.url, dataset.server.url])
        with TorrentReader(torrent, fetcher) as reader:
            array = zarr.open_array(TorrentStore(reader, "ds/frames.zarr"), mode="r")
            np.testing.assert_array_equal(array[20:24], dataset.data[20:24])
            assert fetcher.stats.failures >= 1


def test_server_without_range_support_is_refused(dataset: Dataset) -> None:
    torrent = dataset.torrents["v2"]
    with (
        RangeServer(dataset.root, honour_range=False) as server,
        TorrentReader(torrent, WebseedFetcher(torrent, [server.url])) as reader,
    ):
        with pytest.raises(PieceUnavailable, match="does not support HTTP Range"):
            reader.read("ds/session.h5", 0, 100)
        # a small file asked for whole is fine even from such a server
        assert reader.read("ds/README.txt") == b"frames of a mouse visual cortex\n"


def test_unreachable_web_seed(dataset: Dataset) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torrent = dataset.torrents["v2"]
    fetcher = WebseedFetcher(torrent, [f"http://127.0.0.1:{port}/"], timeout=2)
    with (
        TorrentReader(torrent, fetcher) as reader,
        pytest.raises(PieceUnavailable, match="ConnectError"),
    ):
        reader.read("ds/README.txt")


def test_missing_files_and_bad_sources(dataset: Dataset) -> None:
    with open_reader(dataset, "v2") as reader:
        with pytest.raises(FileNotInTorrent):
            reader.read("ds/nope")
        with pytest.raises(FileNotFoundError):
            reader.info("ds/frames.zarr/c/99")
        store = TorrentStore(reader, "ds/frames.zarr")
        assert zarr.storage.StorePath(store).store is store
        with pytest.raises(ValueError, match="read-only"):
            TorrentStore(reader, "ds", read_only=False)
    from holdfast.arrays.errors import SourceError

    with pytest.raises(SourceError, match="no http"):
        WebseedFetcher(dataset.torrents["v2"], ["ftp://example.org/"])


def test_cache_is_bounded_and_reused(dataset: Dataset) -> None:
    torrent = dataset.torrents["v2"]
    # room for the pieces of the largest chunk, far less than the whole array
    largest = max(dataset.chunk_files("frames.zarr").values())
    limit = (largest // torrent.piece_length + 2) * torrent.piece_length
    assert limit < dataset.data.nbytes / 4
    with open_reader(dataset, "v2", cache_bytes=limit) as reader:
        array = zarr.open_array(TorrentStore(reader, "ds/frames.zarr"), mode="r")
        np.testing.assert_array_equal(array[:], dataset.data)
        assert 0 < reader.cache.size <= limit
        assert reader.cache.stats.evictions > 0
        np.testing.assert_array_equal(array[60:64], dataset.data[60:64])
        dataset.server.stats.reset()
        np.testing.assert_array_equal(array[60:64], dataset.data[60:64])  # now cached
        assert dataset.server.stats.requests == 0


def test_consecutive_pieces_of_a_file_come_in_one_request(dataset: Dataset) -> None:
    with open_reader(dataset, "v2") as reader:
        path = "ds/session.h5"
        index = reader.pieces.file_index(path)
        pieces = reader.pieces.pieces_for(index, 0, reader.size(path))
        assert len(pieces) > 4
        dataset.server.stats.reset()
        assert reader.read(path) == (dataset.root / path).read_bytes()
        assert dataset.server.stats.requests == 1
        assert reader.fetcher.stats.pieces == len(pieces)


def test_unverified_reads_move_exactly_the_range(dataset: Dataset) -> None:
    with open_reader(dataset, "v2", verify=False) as reader:
        dataset.server.stats.reset()
        data = reader.read("ds/session.h5", 1000, 1100)
        assert data == (dataset.root / "ds/session.h5").read_bytes()[1000:1100]
        assert dataset.server.stats.bytes_sent == 100


@pytest.mark.parametrize("version", VERSIONS)
def test_fsspec_filesystem(dataset: Dataset, version: str) -> None:
    with open_reader(dataset, version) as reader:
        fs = TorrentFileSystem(reader)
        assert fs.ls("ds", detail=False) == [
            "ds/README.txt",
            "ds/frames.zarr",
            "ds/session.h5",
            "ds/sharded.zarr",
        ]
        assert fs.info("ds/frames.zarr")["type"] == "directory"
        readme = dataset.root / "ds/README.txt"
        assert fs.info("holdfast://ds/README.txt") == {
            "name": "ds/README.txt",
            "size": readme.stat().st_size,
            "type": "file",
        }
        assert fs.cat_file("ds/README.txt", start=7, end=13) == b"of a m"
        assert fs.cat_file("ds/README.txt", start=-7) == b"cortex\n"
        assert fs.exists("ds/session.h5") and not fs.exists("ds/other")
        assert sorted(fs.find("ds/frames.zarr"))[0] == "ds/frames.zarr/c/0/0/0"
        with pytest.raises(FileNotFoundError):
            fs.cat_file("ds/missing")
        with pytest.raises(PermissionError):
            fs.open("ds/README.txt", "wb")
        # zarr through its own fsspec store
        async_fs = TorrentFileSystem(reader, asynchronous=True)
        store = zarr.storage.FsspecStore(async_fs, path="ds/frames.zarr", read_only=True)
        np.testing.assert_array_equal(zarr.open_array(store, mode="r")[7], dataset.data[7])


@pytest.mark.parametrize("version", ["v1", "hybrid"])
def test_hdf5_read_lazily_through_fsspec(dataset: Dataset, version: str) -> None:
    h5py = pytest.importorskip("h5py")
    size = (dataset.root / "ds/session.h5").stat().st_size
    with open_reader(dataset, version) as reader:
        fs = TorrentFileSystem(reader)
        dataset.server.stats.reset()
        with fs.open("ds/session.h5") as handle, h5py.File(handle, "r") as h5:
            frames = h5["acquisition/frames"]
            assert frames.shape == dataset.data.shape
            assert h5.attrs["subject"] == "mouse 7"
            np.testing.assert_array_equal(frames[33], dataset.data[33])
        moved = dataset.server.stats.bytes_sent
        # the header, the chunk index and one 32 KiB chunk, not the 2 MiB file
        assert moved < size / 4, (moved, size)


def test_xarray_opens_a_dataset_over_the_store(dataset: Dataset, tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")
    source = tmp_path / "src"
    ds = xr.Dataset(
        {"frames": (("time", "y", "x"), dataset.data[:8])},
        coords={"time": np.arange(8) * 0.5},
        attrs={"subject": "mouse 7"},
    )
    ds.to_zarr(
        source / "ds" / "cube.zarr",
        zarr_format=3,
        consolidated=False,
        encoding={"frames": {"chunks": (1, 128, 128)}},
    )
    with RangeServer(source) as server:
        torrent = create_torrent(
            source / "ds", version="hybrid", align="zarr", webseeds=[server.url]
        ).torrent
        with TorrentReader(torrent, WebseedFetcher(torrent)) as reader:
            opened = xr.open_zarr(TorrentStore(reader, "ds/cube.zarr"), consolidated=False)
            assert opened.attrs["subject"] == "mouse 7"
            assert opened["frames"].dims == ("time", "y", "x")
            server.stats.reset()
            np.testing.assert_array_equal(opened["frames"].sel(time=1.5).values, dataset.data[3])
            fetched = [p for p in server.stats.paths if "/frames/c/" in p]
            assert fetched == ["/ds/cube.zarr/frames/c/3/0/0"]
