from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from holdfast.torrents import TorrentError, bencode, create_torrent, parse_torrent
from holdfast.torrents.files import is_junk, list_source_files
from holdfast.torrents.piece_size import choose_piece_length, padding_bytes, zarr_piece_length
from holdfast.torrents.verify import verify_data
from tests.torrents.judge import libtorrent_view

KiB = 1024
MiB = 1024 * KiB


def write(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    write(root / "b.bin", 3 * 64 * KiB + 17, 1)
    write(root / "a.txt", 100, 2)
    write(root / "sub" / "z.bin", 64 * KiB, 3)
    write(root / "sub" / "y" / "deep.bin", 200 * KiB + 1, 4)
    (root / "empty").write_bytes(b"")
    write(root / "sub" / "small", 1, 5)
    return root


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_libtorrent_loads_what_we_create(dataset: Path, version: str) -> None:
    created = create_torrent(dataset, version=version, piece_length=64 * KiB)  # type: ignore[arg-type]
    t = created.torrent
    lt = libtorrent_view(created.data)
    assert (t.infohash_v1, t.infohash_v2) == (lt.infohash_v1, lt.infohash_v2)
    assert [f.path for f in t.files] == lt.paths
    assert (
        t.total_size
        == lt.total_size
        == sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file())
    )
    assert t.num_pieces == lt.num_pieces
    assert t.version == version
    # files in BEP 52 order, whatever the order on disk
    assert [f.path for f in t.files] == [
        "dataset/a.txt",
        "dataset/b.bin",
        "dataset/empty",
        "dataset/sub/small",
        "dataset/sub/y/deep.bin",
        "dataset/sub/z.bin",
    ]
    assert verify_data(t, dataset.parent).ok


def test_v2_infohash_equals_libtorrent_created(dataset: Path) -> None:
    import libtorrent as lt

    with pytest.warns(DeprecationWarning):
        fs = lt.file_storage()
        lt.add_files(fs, str(dataset))
        ct = lt.create_torrent(fs, 64 * KiB, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(dataset.parent))
    theirs = parse_torrent(lt.bencode(ct.generate()))
    ours = create_torrent(dataset, version="v2", piece_length=64 * KiB).torrent
    assert ours.infohash_v2 == theirs.infohash_v2
    assert ours.piece_layers == theirs.piece_layers


def test_deterministic(dataset: Path) -> None:
    first = create_torrent(dataset, version="hybrid", creation_date=1, threads=1)
    os.utime(dataset / "a.txt", (0, 0))
    second = create_torrent(dataset, version="hybrid", creation_date=1, threads=4)
    assert first.data == second.data
    third = create_torrent(dataset, version="hybrid")
    assert third.torrent.infohash_v2 == first.torrent.infohash_v2


def test_single_file(tmp_path: Path) -> None:
    path = write(tmp_path / "one.bin", 100 * KiB + 3)
    for version in ("v1", "v2", "hybrid"):
        created = create_torrent(path, version=version, piece_length=32 * KiB)  # type: ignore[arg-type]
        t = created.torrent
        assert [(f.path, f.size) for f in t.files] == [("one.bin", 100 * KiB + 3)]
        lt = libtorrent_view(created.data)
        assert (t.infohash_v1, t.infohash_v2) == (lt.infohash_v1, lt.infohash_v2)
        assert verify_data(t, path).ok


def test_metadata_fields(dataset: Path) -> None:
    created = create_torrent(
        dataset,
        trackers=["http://t1/announce", ["udp://t2:1", "udp://t3:1"]],
        webseeds=["http://seed/data/"],
        comment="sea surface temperature",
        private=True,
        created_by="tests",
        creation_date=1234,
        similar=["ab" * 20],
        collections=["noaa"],
    )
    t = created.torrent
    assert t.trackers == [["http://t1/announce"], ["udp://t2:1", "udp://t3:1"]]
    assert t.webseeds == ["http://seed/data/"]
    assert (t.comment, t.created_by, t.creation_date, t.private) == (
        "sea surface temperature",
        "tests",
        1234,
        True,
    )
    assert t.similar == ["ab" * 20]
    assert t.collections == ["noaa"]
    assert bencode.decode(created.data)[b"announce"] == b"http://t1/announce"


def test_hybrid_pads_every_file_but_the_last(dataset: Path) -> None:
    created = create_torrent(dataset, version="hybrid", piece_length=64 * KiB)
    files = bencode.decode(created.data)[b"info"][b"files"]
    pads = [f for f in files if f.get(b"attr") == b"p"]
    assert pads and all(f[b"path"] == [b".pad", str(f[b"length"]).encode()] for f in pads)
    assert files[-1].get(b"attr") != b"p"
    t = created.torrent
    assert all(f.offset % (64 * KiB) == 0 for f in t.files if f.size)


def test_junk_files_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write(root / "data.csv", 10)
    for junk in (".DS_Store", "Thumbs.db", "._data.csv", ".data.csv.swp", "notes.txt~"):
        write(root / junk, 5)
    write(root / "__MACOSX" / "x", 5)
    assert [f.path for f in create_torrent(root).torrent.files] == ["d/data.csv"]
    kept = create_torrent(root, include_junk=True).torrent.files
    assert len(kept) == 7
    assert is_junk(".DS_Store") and is_junk("a.swp") and not is_junk("data.csv")


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write(root / "real", 10)
    write(tmp_path / "secret", 10)
    (root / "link").symlink_to(tmp_path / "secret")
    (root / "dirlink").symlink_to(tmp_path)
    assert [f.path for f in create_torrent(root).torrent.files] == ["d/real"]


def test_names_a_client_would_rewrite_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "d"
    write(root / "ok", 1)
    write(root / "bad\x01name", 1)
    with pytest.raises(TorrentError, match="cannot be stored"):
        create_torrent(root)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"piece_length": 1000}, "at least 16 KiB"),
        ({"piece_length": 48 * KiB}, "power of two"),
        ({"piece_length": 1 << 30}, "at most 512 MiB"),
        ({"version": "v3"}, "unknown torrent version"),
        ({"align": "hdf5"}, "unknown alignment"),
        ({"similar": ["nothex"]}, "40-hex"),
    ],
)
def test_bad_arguments(dataset: Path, kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(TorrentError, match=fragment):
        create_torrent(dataset, **kwargs)  # type: ignore[arg-type]


def test_empty_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    with pytest.raises(TorrentError, match="no files"):
        create_torrent(tmp_path / "e")
    (tmp_path / "e" / "zero").write_bytes(b"")
    with pytest.raises(TorrentError, match="empty"):
        create_torrent(tmp_path / "e")
    with pytest.raises(TorrentError, match="cannot read"):
        create_torrent(tmp_path / "missing")


def test_progress_is_reported(dataset: Path) -> None:
    seen: list[tuple[int, int]] = []
    create_torrent(dataset, progress=lambda done, total: seen.append((done, total)))
    total = sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file())
    assert seen and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_bounded_memory_buffers(tmp_path: Path) -> None:
    # many chunks in flight would show up as many distinct buffers; there is one per thread
    from holdfast.torrents import hashing

    path = write(tmp_path / "big", 40 * MiB + 5)
    buffers: set[int] = set()
    original = hashing._Worker._buffer

    def spy(self: hashing._Worker) -> bytearray:
        buf = original(self)
        buffers.add(id(buf))
        return buf

    hashing._Worker._buffer = spy  # type: ignore[method-assign]
    try:
        t = create_torrent(path, version="hybrid", threads=2, processes=False).torrent
    finally:
        hashing._Worker._buffer = original  # type: ignore[method-assign]
    assert len(buffers) <= 2
    assert verify_data(t, path).ok


# -- piece size -------------------------------------------------------------------


def test_piece_size_grows_with_data() -> None:
    assert choose_piece_length([10 * KiB], "v1") == 16 * KiB
    assert choose_piece_length([1 << 30], "v1") == 1 * MiB
    assert choose_piece_length([1 << 40], "v1") == 16 * MiB


def test_piece_size_shrinks_for_many_small_files() -> None:
    sizes = [64 * KiB] * 2000
    v1 = choose_piece_length(sizes, "v1")
    hybrid = choose_piece_length(sizes, "hybrid")
    assert v1 == 128 * KiB
    assert hybrid == 64 * KiB
    assert padding_bytes(sizes, hybrid) == 0
    mixed = [1 << 30] + [1000] * 500
    length = choose_piece_length(mixed, "hybrid")
    assert padding_bytes(mixed, length) <= 0.05 * sum(mixed)


def test_zarr_alignment(tmp_path: Path) -> None:
    store = tmp_path / "sst.zarr"
    (store / "temp").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    (store / "temp" / "zarr.json").write_text("{}")
    for i in range(6):
        write(store / "temp" / "c" / "0" / str(i), 300 * KiB + i * 1000, i)
    created = create_torrent(store, version="v1", align="zarr")
    t = created.torrent
    assert t.piece_length == zarr_piece_length([300 * KiB]) == 256 * KiB
    # every chunk starts on a piece boundary, even in a v1 torrent
    for f in t.files:
        if f.path.endswith(tuple("012345")):
            assert f.offset is not None and f.offset % t.piece_length == 0
            span = t.piece_span(f.path)
            assert span.start == 0
    lt = libtorrent_view(created.data)
    assert lt.infohash_v1 == t.infohash_v1
    assert verify_data(t, store).ok


def test_source_files_order(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for name in ("b", "a/z", "a.txt", "A", "a/b/c"):
        write(root / name, 1)
    order = [f.components for f in list_source_files(root)]
    assert order == [("A",), ("a", "b", "c"), ("a", "z"), ("a.txt",), ("b",)]


# -- verify ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_verify_names_bad_pieces_and_files(dataset: Path, version: str) -> None:
    t = create_torrent(dataset, version=version, piece_length=64 * KiB).torrent  # type: ignore[arg-type]
    target = dataset / "sub" / "y" / "deep.bin"
    data = bytearray(target.read_bytes())
    data[100 * KiB] ^= 0xFF
    target.write_bytes(bytes(data))
    (dataset / "a.txt").unlink()
    result = verify_data(t, dataset)
    assert not result.ok
    assert result.missing_files == ["dataset/a.txt"]
    if version == "v1":
        # unaligned: b.bin shares its first piece with the missing a.txt
        assert result.bad_files == ["dataset/a.txt", "dataset/b.bin", "dataset/sub/y/deep.bin"]
    else:
        assert result.bad_files == ["dataset/a.txt", "dataset/sub/y/deep.bin"]
    deep = t.piece_span("dataset/sub/y/deep.bin", 100 * KiB, 1).first
    assert deep in result.bad_pieces
    assert t.piece_span("dataset/a.txt").first in result.bad_pieces
    # the pieces of the untouched files are fine
    assert t.piece_span("dataset/sub/z.bin").first not in result.bad_pieces


def test_verify_refuses_unknown_location(dataset: Path, tmp_path: Path) -> None:
    t = create_torrent(dataset).torrent
    with pytest.raises(TorrentError, match="cannot find"):
        verify_data(t, tmp_path / "elsewhere")


def test_verify_never_reads_through_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "downloads" / "d"
    write(root / "sub" / "x", 100, 1)
    write(root / "y", 100, 2)
    t = create_torrent(root).torrent
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub" / "x").write_bytes((root / "sub" / "x").read_bytes())
    (tmp_path / "y-copy").write_bytes((root / "y").read_bytes())
    (root / "sub" / "x").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(elsewhere / "sub")  # a folder pointing outside
    (root / "y").unlink()
    (root / "y").symlink_to(tmp_path / "y-copy")  # a file pointing outside
    result = verify_data(t, tmp_path / "downloads")
    assert result.missing_files == ["d/sub/x", "d/y"]
    assert not result.ok
