"""``align="zarr"``: pieces sized for what zarr really reads, measured with zarr itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.storage import LocalStore

from holdfast.torrents import create_torrent
from holdfast.torrents.files import list_source_files
from holdfast.torrents.piece_size import zarr_piece_length
from holdfast.torrents.verify import verify_data
from holdfast.torrents.zarr_layout import (
    Sharding,
    inner_chunk_sizes,
    sharding_of,
    zarr_store_piece_length,
)
from tests.torrents.judge import libtorrent_view

KiB = 1024


class RecordingStore(LocalStore):
    """A local store that notes every byte range zarr reads from array data."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, read_only=True)
        self.reads: list[tuple[str, int, int]] = []

    async def get(
        self, key: str, prototype: Any = None, byte_range: ByteRequest | None = None
    ) -> Any:
        buffer = await super().get(key, prototype, byte_range)
        if buffer is not None and not key.endswith("zarr.json"):
            size = (Path(str(self.root)) / key).stat().st_size
            if byte_range is None:
                start, end = 0, size
            elif isinstance(byte_range, RangeByteRequest):
                start, end = byte_range.start, byte_range.end
            elif isinstance(byte_range, OffsetByteRequest):
                start, end = byte_range.offset, size
            else:
                assert isinstance(byte_range, SuffixByteRequest)
                start, end = size - byte_range.suffix, size
            self.reads.append((key, start, end))
        return buffer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zarr v3 store: a sharded array, an unsharded one, and a tiny sharded mask."""
    root = tmp_path_factory.mktemp("zarr") / "survey.zarr"
    group = zarr.open_group(LocalStore(root), mode="w", zarr_format=3)
    rng = np.random.default_rng(0)
    images = group.create_array(
        "images", shape=(16, 512, 512), dtype="uint16", chunks=(1, 512, 512), shards=(4, 512, 512)
    )
    images[:] = rng.integers(0, 4096, size=(16, 512, 512)).astype("uint16")
    frames = group.create_array(
        "frames", shape=(20, 256, 512), dtype="uint16", chunks=(1, 256, 512)
    )
    frames[:] = rng.integers(0, 4096, size=(20, 256, 512)).astype("uint16")
    mask = group.create_array("mask", shape=(64,), dtype="uint8", chunks=(8,), shards=(64,))
    mask[:] = 1
    return root


def fetched(size: int, start: int, end: int, piece_length: int) -> int:
    """Bytes of a file (starting on a piece boundary) in the pieces that hold ``start..end``."""
    first = start // piece_length * piece_length
    last = min(-(-end // piece_length) * piece_length, size)
    return last - first


def inner_chunk_reads(store: Path) -> list[tuple[str, int, int]]:
    """(shard, start, end) of each inner chunk zarr reads to get every image."""
    recorder = RecordingStore(store)
    images = zarr.open_array(recorder, path="images", mode="r")
    for k in range(images.shape[0]):
        images[k]
    index = sharding_of(json.loads((store / "images" / "zarr.json").read_text()))
    assert index is not None
    reads = [
        (key, start, end)
        for key, start, end in recorder.reads
        if key.startswith("images/") and end - start != index.index_bytes
    ]
    assert len(reads) == 16
    return reads


def worst_ratio(store: Path, piece_length: int) -> float:
    ratios = []
    for key, start, end in inner_chunk_reads(store):
        size = (store / key).stat().st_size
        ratios.append(fetched(size, start, end, piece_length) / (end - start))
    return max(ratios)


def test_sharded_arrays_get_pieces_from_their_inner_chunks(store: Path) -> None:
    files = list_source_files(store)
    piece_length = zarr_store_piece_length(files)
    # each 512 KiB inner chunk takes about 440 KiB compressed
    assert all(400 * KiB < end - start < 512 * KiB for _, start, end in inner_chunk_reads(store))
    # an eighth of the inner chunk, rounded down to a power of two; the frames
    # (chunks of ~220 KiB, read whole) alone would allow 128 KiB
    assert piece_length == 32 * KiB
    assert worst_ratio(store, piece_length) <= 1.25
    # sizing from the files alone, as before, moves much more for some reads
    old = zarr_piece_length([f.size for f in files if "zarr.json" not in f.components])
    assert old == 128 * KiB
    assert worst_ratio(store, old) > 1.4


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_created_torrent_keeps_shards_on_piece_boundaries(store: Path, version: str) -> None:
    created = create_torrent(store, version=version, align="zarr")  # type: ignore[arg-type]
    t = created.torrent
    assert t.piece_length == 32 * KiB
    shards = [f for f in t.files if "/images/c/" in f.path]
    assert len(shards) == 4
    for f in shards:
        assert t.piece_span(f.path).start == 0
    # so the pieces an inner chunk needs are the ones the file arithmetic says
    for key, start, end in inner_chunk_reads(store):
        span = t.piece_span(f"survey.zarr/{key}", offset=start, length=end - start)
        size = (store / key).stat().st_size
        assert len(span.pieces) * t.piece_length >= fetched(size, start, end, t.piece_length)
    lt = libtorrent_view(created.data)
    assert (lt.infohash_v1, lt.infohash_v2) == (t.infohash_v1, t.infohash_v2)
    assert verify_data(t, store.parent).ok


def test_shard_index_gives_the_inner_chunk_sizes(store: Path) -> None:
    sharding = sharding_of(json.loads((store / "images" / "zarr.json").read_text()))
    assert sharding == Sharding(
        inner_chunks=4, index_bytes=4 * 16 + 4, index_at_end=True, entry_format="<QQ"
    )
    reads = {(key, end - start) for key, start, end in inner_chunk_reads(store)}
    shard_files = [f for f in list_source_files(store) if f.components[:2] == ("images", "c")]
    found = {
        ("/".join(f.components), size)
        for f in shard_files
        for size in inner_chunk_sizes(f, sharding)
    }
    assert found == reads
    # an index we cannot decode: equal shares of the shard
    opaque = Sharding(4, 68, True, None)
    f = shard_files[0]
    assert inner_chunk_sizes(f, opaque) == [(f.size - 68) // 4] * 4


def test_an_index_too_large_to_read_is_estimated(tmp_path: Path) -> None:
    shard = tmp_path / "c" / "0"
    shard.parent.mkdir()
    shard.write_bytes(bytes(1000))
    f = list_source_files(tmp_path)[0]
    # a billion inner chunks: the index is not read, and the estimate stays small
    sizes = inner_chunk_sizes(f, Sharding(10**9, 16 * 10**9, True, "<QQ"))
    assert sizes == []  # the "index" would be larger than the file
    sizes = inner_chunk_sizes(f, Sharding(10**9, 100, True, None))
    assert len(sizes) == 65536 and set(sizes) == {0}


def test_empty_inner_chunks_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "sparse.zarr"
    group = zarr.open_group(LocalStore(root), mode="w", zarr_format=3)
    a = group.create_array(
        "a", shape=(8, 64), dtype="float32", chunks=(1, 64), shards=(8, 64), fill_value=0
    )
    a[2] = np.arange(64, dtype="float32")
    a[5] = np.arange(64, dtype="float32")
    sharding = sharding_of(json.loads((root / "a" / "zarr.json").read_text()))
    assert sharding is not None and sharding.inner_chunks == 8
    (shard,) = [f for f in list_source_files(root) if f.components[:2] == ("a", "c")]
    assert len(inner_chunk_sizes(shard, sharding)) == 2


def test_sharding_metadata_that_makes_no_sense_counts_as_unsharded() -> None:
    good = {
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 64]}},
        "codecs": [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [2, 16],
                    "codecs": [{"name": "bytes"}],
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "big"}}],
                    "index_location": "start",
                },
            }
        ],
    }
    assert sharding_of(good) == Sharding(16, 256, False, ">QQ")
    uneven: Any = json.loads(json.dumps(good))
    uneven["codecs"][0]["configuration"]["chunk_shape"] = [3, 16]
    assert sharding_of(uneven) is None
    assert sharding_of({"codecs": "nonsense", "chunk_grid": {}}) is None
    for endian in ("middle", ["little"], None):
        odd: Any = json.loads(json.dumps(good))
        odd["codecs"][0]["configuration"]["index_codecs"][0]["configuration"] = {"endian": endian}
        assert sharding_of(odd) == Sharding(16, 256, False, None)  # estimated, not read
    odd["codecs"][0]["configuration"]["index_codecs"][0]["configuration"] = "little"
    assert sharding_of(odd) == Sharding(16, 256, False, None)
    assert sharding_of({"codecs": [{"name": "bytes"}], "chunk_grid": good["chunk_grid"]}) is None


def test_piece_length_rules() -> None:
    # unsharded chunks: the largest power of two within the median chunk
    assert zarr_piece_length([300 * KiB]) == 256 * KiB
    # sharded: an eighth of the median inner chunk; the smaller rule wins
    assert zarr_piece_length([300 * KiB], [[1024 * KiB] * 5]) == 128 * KiB
    assert zarr_piece_length([], [[100 * KiB]]) == 16 * KiB  # never below 16 KiB
    assert zarr_piece_length([], []) == 16 * KiB
    # never so small that a huge store needs more than about a million pieces
    huge = [1 << 30] * 1024  # 1 TiB of shards
    assert zarr_piece_length([], [[256 * KiB] * 4096], sizes=huge) == 1024 * KiB


def test_tiny_sharded_arrays_do_not_set_the_piece_length(store: Path) -> None:
    # the mask's inner chunks are a few bytes; it holds far less than 1% of the store
    files = list_source_files(store)
    assert any(f.components[:1] == ("mask",) for f in files)
    assert zarr_store_piece_length(files) == 32 * KiB
    without_images = [f for f in files if f.components[:1] != ("images",)]
    assert zarr_store_piece_length(without_images) == 128 * KiB


def test_store_without_array_metadata_uses_file_sizes(tmp_path: Path) -> None:
    root = tmp_path / "plain.zarr"
    (root / "c").mkdir(parents=True)
    (root / "zarr.json").write_text("not json")
    for i in range(3):
        (root / "c" / str(i)).write_bytes(bytes(100 * KiB))
    assert zarr_store_piece_length(list_source_files(root)) == 64 * KiB
