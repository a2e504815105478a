"""TorrentReader and PieceCache with a fetcher of our own: concurrency and closing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from holdfast.arrays.cache import PieceCache
from holdfast.arrays.errors import SourceError
from holdfast.arrays.pieces import Piece, PieceMap
from holdfast.arrays.source import PieceFetcher, TorrentReader, Verifier
from holdfast.torrents import create_torrent


class LocalFetcher(PieceFetcher):
    """Pieces read from the files on disk, optionally held back until released."""

    def __init__(self, root: Path, hold: threading.Event | None = None) -> None:
        super().__init__()
        self.root = root
        self.hold = hold
        self.started = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()

    def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
        with self.lock:
            self.calls += 1
        self.started.set()
        if self.hold is not None:
            self.hold.wait(timeout=10)
        buffer = bytearray(piece.length)
        for s in piece.segments:
            with (self.root / pieces.file(s.file_index).path).open("rb") as handle:
                handle.seek(s.file_start)
                buffer[s.piece_offset : s.piece_offset + s.length] = handle.read(s.length)
        return bytes(buffer)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "d").mkdir()
    for i in range(4):
        (tmp_path / "d" / f"f{i}").write_bytes(bytes([i]) * (100_000 + i))
    return tmp_path


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_concurrent_readers_fetch_each_piece_once(files: Path, version: str) -> None:
    torrent = create_torrent(files / "d", version=version, piece_length=16384).torrent
    fetcher = LocalFetcher(files)
    with TorrentReader(torrent, fetcher, workers=4) as reader:
        results: list[bytes] = []
        lock = threading.Lock()

        def read() -> None:
            data = reader.read("d/f2")
            with lock:
                results.append(data)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert results == [(files / "d/f2").read_bytes()] * 8
        index = reader.pieces.file_index("d/f2")
        assert fetcher.calls == len(reader.pieces.pieces_for(index, 0, 100_002))
        assert reader.read("d/f3", -3) == b"\x03" * 3
        assert reader.read("d/f3", 5, 5) == b""


def test_closing_releases_waiting_readers(files: Path) -> None:
    torrent = create_torrent(files / "d", version="v2", piece_length=16384).torrent
    hold = threading.Event()
    fetcher = LocalFetcher(files, hold)
    reader = TorrentReader(torrent, fetcher, workers=1)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            reader.read("d/f1")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    assert fetcher.started.wait(timeout=10)
    reader.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], SourceError)
    hold.set()


def test_cache_bounds_and_failures() -> None:
    cache = PieceCache(10)
    assert cache.get_or_load("a", lambda: b"12345") == b"12345"
    assert cache.get_or_load("b", lambda: b"123456") == b"123456"
    assert "a" not in cache  # evicted: 11 bytes would exceed 10
    assert cache.size == 6
    assert cache.get_or_load("big", lambda: b"x" * 11) == b"x" * 11
    assert "big" not in cache  # larger than the whole cache: returned, not kept
    with pytest.raises(KeyError):
        cache.get_or_load("bad", lambda: {}["missing"])
    assert cache.get_or_load("bad", lambda: b"ok") == b"ok"  # a failure is not cached
    with pytest.raises(ValueError):
        PieceCache(-1)


def test_v2_pieces_without_their_layer_are_not_trusted(files: Path) -> None:
    from holdfast.torrents import bencode, parse_torrent

    (files / "d" / "small").write_bytes(b"tiny file")
    created = create_torrent(files / "d", version="v2", piece_length=16384)
    meta = bencode.decode(created.data)
    del meta[b"piece layers"]  # as in a torrent rebuilt from a magnet link
    torrent = parse_torrent(bencode.encode(meta))
    assert torrent.piece_layers == {}
    with TorrentReader(torrent, LocalFetcher(files)) as reader:
        # a file within one piece is checked against its pieces root alone
        assert reader.read("d/small") == b"tiny file"
        with pytest.raises(SourceError, match="cannot be verified"):
            reader.read("d/f0", 0, 10)
    with TorrentReader(torrent, LocalFetcher(files), verify=False) as reader:
        assert reader.read("d/f0", 0, 10) == b"\x00" * 10


def test_a_fetcher_is_not_trusted_to_verify(files: Path) -> None:
    from holdfast.arrays.errors import PieceHashMismatch

    class CarelessFetcher(LocalFetcher):
        def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
            return bytes(piece.length)  # ignores `verify`

    for version in ("v1", "v2"):
        torrent = create_torrent(files / "d", version=version, piece_length=16384).torrent
        with TorrentReader(torrent, CarelessFetcher(files)) as reader:
            with pytest.raises(PieceHashMismatch):
                reader.read("d/f1", 0, 10)
            assert len(reader.cache) == 0


def test_bytes_other_than_those_verified_are_checked_again(files: Path) -> None:
    """The reader skips its second check only for the very bytes a fetcher verified."""
    from holdfast.arrays.errors import PieceHashMismatch

    class SwappingFetcher(LocalFetcher):
        def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
            good = super().fetch_piece(pieces, piece, verify)
            assert verify is not None and verify(good)
            return bytes(len(good))  # verified one thing, hands back another

    class HonestFetcher(LocalFetcher):
        def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
            data = super().fetch_piece(pieces, piece, verify)
            assert verify is not None and verify(data)
            return data

    torrent = create_torrent(files / "d", version="v2", piece_length=16384).torrent
    with TorrentReader(torrent, SwappingFetcher(files)) as reader:
        with pytest.raises(PieceHashMismatch):
            reader.read("d/f1", 0, 10)
        assert len(reader.cache) == 0
    expected = (files / "d/f1").read_bytes()
    with TorrentReader(torrent, HonestFetcher(files)) as reader:
        assert reader.read("d/f1") == expected
