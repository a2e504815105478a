"""The read core: a torrent's files as byte ranges, served from verified pieces.

A :class:`PieceFetcher` knows how to get the bytes of a piece from somewhere (web seeds
over HTTP Range now; a BitTorrent session with piece priorities later). A
:class:`TorrentReader` turns `read(path, start, end)` into the pieces that cover it,
fetches the missing ones in parallel, verifies each against the torrent's hashes, keeps
them in a bounded LRU cache, and cuts the range out. The zarr store and the fsspec
filesystem are thin layers over one reader.

Files known in advance (a zarr.json the instance already sent) can be handed over with
:meth:`TorrentReader.seed_file`; they are used only once they verify against the torrent,
so opening an array needs no fetch at all.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from holdfast.arrays.cache import PieceCache
from holdfast.arrays.errors import FileNotInTorrent, PieceHashMismatch, SourceError
from holdfast.arrays.pieces import Piece, PieceMap
from holdfast.torrents import Torrent, TorrentFile

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_WORKERS = 8

Verifier = Callable[[bytes], bool]


@dataclass(slots=True)
class FetchStats:
    """What a fetcher moved: counted by the fetcher, read by tests and benchmarks."""

    requests: int = 0
    bytes_fetched: int = 0
    pieces: int = 0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self, *, requests: int = 0, nbytes: int = 0, pieces: int = 0, failures: int = 0
    ) -> None:
        with self.lock:
            self.requests += requests
            self.bytes_fetched += nbytes
            self.pieces += pieces
            self.failures += failures


class PieceFetcher(ABC):
    """Somewhere the bytes of a torrent's pieces can be had. Methods may block; the reader
    calls them from worker threads, several at once."""

    # True when the fetcher's source checks pieces against the torrent itself (a
    # BitTorrent session): then a piece the reader cannot check (a v2 torrent without its
    # piece layers) is still accepted from it
    verifies_pieces: bool = False

    def __init__(self) -> None:
        self.stats = FetchStats()

    @abstractmethod
    def fetch_piece(self, pieces: PieceMap, piece: Piece, verify: Verifier | None) -> bytes:
        """The `piece.length` bytes of the piece (gaps between files as zeros).

        With `verify`, a fetcher that has several places to ask keeps asking until one
        gives bytes that pass, and raises PieceHashMismatch if none does; without it, the
        first complete answer is returned.
        """

    def fetch_run(
        self, pieces: PieceMap, run: list[Piece], verify: list[Verifier] | None
    ) -> list[bytes]:
        """Several consecutive pieces of one file; fetchers that can ask for them in one
        request (a web seed's single Range) override this."""
        checks: list[Verifier | None] = list(verify) if verify is not None else [None] * len(run)
        return [
            self.fetch_piece(pieces, piece, check) for piece, check in zip(run, checks, strict=True)
        ]

    def fetch_range(self, pieces: PieceMap, file_index: int, start: int, end: int) -> bytes:
        """Bytes `start .. end` of one file, unverified; only for readers built with
        `verify=False`. Fetchers that can only move whole pieces leave this out."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - most fetchers hold nothing to release
        """Release connections; the fetcher is not used afterwards."""


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """A file or directory in the torrent, fsspec style."""

    name: str  # full path in the torrent
    size: int
    type: str  # "file" or "directory"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "type": self.type}


class TorrentReader:
    """Reads byte ranges of a torrent's files through a fetcher, a piece cache and the
    torrent's hashes. Thread-safe; usable from any event loop."""

    def __init__(
        self,
        torrent: Torrent,
        fetcher: PieceFetcher,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        verify: bool = True,
        workers: int = DEFAULT_WORKERS,
        origin: str | None = None,
    ) -> None:
        self.torrent = torrent
        # where the torrent came from (a URL or path), so a reference can reopen it
        self.origin = origin
        self.fetcher = fetcher
        self.pieces = PieceMap(torrent)
        self.cache = PieceCache(cache_bytes)
        self.verify = verify
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="holdfast-piece")
        self._dirs = _directories(torrent.files.paths)
        self._closed = False
        # files handed over by seed_file (e.g. the zarr.json an instance sent)
        self.known_files = 0

    # -- the tree ------------------------------------------------------------------------

    def info(self, path: str) -> EntryInfo:
        path = _clean(path)
        if path in self.pieces.index:
            size = self.pieces.file(self.pieces.index[path]).size
            return EntryInfo(path, size, "file")
        if path in self._dirs:
            return EntryInfo(path, 0, "directory")
        raise FileNotInTorrent(f"no file or directory {path!r} in this torrent")

    def ls(self, path: str) -> list[EntryInfo]:
        path = _clean(path)
        if path in self.pieces.index:
            return [self.info(path)]
        children = self._dirs.get(path)
        if children is None:
            raise FileNotInTorrent(f"no directory {path!r} in this torrent")
        return [self.info(f"{path}/{name}" if path else name) for name in sorted(children)]

    def walk_files(self, prefix: str = "") -> Iterator[str]:
        """Paths of all files at or under `prefix`, in torrent order."""
        prefix = _clean(prefix)
        for path in self.torrent.files.paths:
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                yield path

    def size(self, path: str) -> int:
        return self.pieces.file(self.pieces.file_index(_clean(path))).size

    # -- reading -------------------------------------------------------------------------

    def read(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes `start .. end` of a file (end exclusive; None for the end of the file).

        Negative `start`/`end` count from the end of the file, as in fsspec. Must not be
        called from the reader's own worker threads.
        """
        file_index, start, end = self._resolve(path, start, end)
        if end <= start:
            return b""
        if not self.verify:
            try:
                return self.fetcher.fetch_range(self.pieces, file_index, start, end)
            except NotImplementedError:
                pass
        futures = self._request(self.pieces.pieces_for(file_index, start, end))
        return self._assemble(file_index, start, end, [f.result() for f in futures])

    async def read_async(self, path: str, start: int = 0, end: int | None = None) -> bytes:
        """`read` for coroutines: the fetching happens on the reader's worker threads."""
        file_index, start, end = self._resolve(path, start, end)
        if end <= start:
            return b""
        loop = asyncio.get_running_loop()
        if not self.verify:
            try:
                return await loop.run_in_executor(
                    self._pool, self.fetcher.fetch_range, self.pieces, file_index, start, end
                )
            except NotImplementedError:
                pass
        futures = self._request(self.pieces.pieces_for(file_index, start, end))
        await _all_done(futures)
        return self._assemble(file_index, start, end, [f.result() for f in futures])

    def prefetch(self, path: str, start: int = 0, end: int | None = None) -> list[Future[bytes]]:
        """Start fetching the pieces of a range without waiting for them."""
        file_index, start, end = self._resolve(path, start, end)
        return self._request(self.pieces.pieces_for(file_index, start, end))

    def seed_file(self, path: str, data: bytes) -> bool:
        """Offer the whole content of a file obtained elsewhere (e.g. zarr.json from the
        instance). It is cached only if it verifies against the torrent, which is possible
        when the file's pieces hold no other file's bytes; returns whether it was used."""
        found = self.pieces.file_pieces(self.pieces.file_index(_clean(path)), data)
        if found is None:
            return False
        for index, content in found:
            self.cache.put(index, content)
        self.known_files += 1
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        # runs cancelled in the queue would otherwise leave their readers waiting
        self.cache.fail_all(SourceError("the reader was closed"))
        self.fetcher.close()

    def __enter__(self) -> TorrentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, path: str, start: int, end: int | None) -> tuple[int, int, int]:
        file_index = self.pieces.file_index(_clean(path))
        size = self.pieces.file(file_index).size
        if start < 0:
            start = max(size + start, 0)
        if end is None:
            end = size
        elif end < 0:
            end = max(size + end, 0)
        return file_index, min(start, size), min(end, size)

    def _request(self, indices: range) -> list[Future[bytes]]:
        """Futures of these pieces; missing ones are fetched in runs of consecutive
        pieces of one file, each run by one worker (one HTTP request for a web seed)."""
        futures: list[Future[bytes]] = []
        owned: list[int] = []
        for index in indices:
            future, owner = self.cache.claim(index)
            futures.append(future)
            if owner:
                owned.append(index)
        for run in self._runs(owned):
            try:
                self._pool.submit(self._load_run, run)
            except RuntimeError as exc:  # the reader was closed
                for piece in run:
                    self.cache.fail(piece.index, SourceError(f"the reader is closed ({exc})"))
        return futures

    def _runs(self, indices: list[int]) -> list[list[Piece]]:
        runs: list[list[Piece]] = []
        for index in indices:
            piece = self.pieces.piece(index)
            if runs and _continues(runs[-1], piece):
                runs[-1].append(piece)
            else:
                runs.append([piece])
        return runs

    def _load_run(self, run: list[Piece]) -> None:
        try:
            datas = self._fetch_run(run)
        except BaseException as exc:
            for piece in run:
                self.cache.fail(piece.index, exc)
            return
        for piece, data in zip(run, datas, strict=True):
            self.cache.fulfil(piece.index, data)

    def _fetch_run(self, run: list[Piece]) -> list[bytes]:
        if not self.verify:
            return self.fetcher.fetch_run(self.pieces, run, None)
        checkable = [self.pieces.can_verify(piece) for piece in run]
        if not all(checkable):
            if not self.fetcher.verifies_pieces:
                index = run[checkable.index(False)].index
                raise SourceError(
                    f"piece {index} cannot be verified: the torrent has neither v1 "
                    "piece hashes nor the v2 piece layer for it"
                )
            # only a source that checks pieces itself may serve these, one at a time
            return [
                self.fetcher.fetch_piece(self.pieces, piece, None)
                if not ok
                else self._fetch_run([piece])[0]
                for piece, ok in zip(run, checkable, strict=True)
            ]
        passed: dict[int, bytes] = {}

        def check(piece: Piece, data: bytes) -> bool:
            ok = self.pieces.verify(piece, data)
            if ok:
                passed[piece.index] = data
            return ok

        checks: list[Verifier] = [partial(check, piece) for piece in run]
        datas = self.fetcher.fetch_run(self.pieces, run, checks)
        # a fetcher must not hand back unverified bytes: anything but the very bytes
        # object that passed its check is checked again
        for piece, data in zip(run, datas, strict=True):
            if passed.get(piece.index) is not data and not self.pieces.verify(piece, data):
                raise PieceHashMismatch(f"piece {piece.index} does not match the torrent's hash")
        return datas

    def _assemble(self, file_index: int, start: int, end: int, chunks: list[bytes]) -> bytes:
        offset = self.pieces.file_offset(file_index)
        if offset is None:  # pragma: no cover - empty files return before fetching
            return b""
        plen = self.pieces.piece_length
        first = (offset + start) // plen
        out = bytearray()
        for i, chunk in enumerate(chunks):
            piece_lo = (first + i) * plen
            lo = max(offset + start, piece_lo) - piece_lo
            hi = min(offset + end, piece_lo + len(chunk)) - piece_lo
            out += chunk[lo:hi]
        if len(out) != end - start:
            raise SourceError(f"short read: wanted {end - start} bytes, got {len(out)}")
        return bytes(out)


MAX_RUN_BYTES = 16 * 1024 * 1024


async def _all_done(futures: list[Future[bytes]]) -> None:
    """Wait for thread-side futures with one wake-up of the event loop, not one each."""
    pending = [f for f in futures if not f.done()]
    if not pending:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    left = len(pending)
    lock = threading.Lock()

    def wake(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    def one_done(_: Future[bytes]) -> None:
        nonlocal left
        with lock:
            left -= 1
            last = left == 0
        if last:
            loop.call_soon_threadsafe(wake, waiter)

    for future in pending:
        future.add_done_callback(one_done)
    await waiter


def _continues(run: list[Piece], piece: Piece) -> bool:
    """Whether `piece` follows `run` directly in one file, so both can be one request."""
    last = run[-1]
    if piece.index != last.index + 1 or len(piece.segments) != 1 or len(last.segments) != 1:
        return False
    before, after = last.segments[0], piece.segments[0]
    return (
        before.file_index == after.file_index
        and before.piece_offset == 0
        and after.piece_offset == 0
        and before.length == last.length  # the earlier piece is all data, no padding
        and before.file_start + before.length == after.file_start
        and sum(p.length for p in run) + piece.length <= MAX_RUN_BYTES
    )


def _clean(path: str) -> str:
    return path.strip("/")


def _directories(paths: list[str]) -> dict[str, set[str]]:
    """Directory path -> names directly inside it ("" is the root)."""
    dirs: dict[str, set[str]] = {"": set()}
    for path in paths:
        parts = path.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            dirs.setdefault(parent, set()).add(parts[depth])
    return dirs


def file_of(reader: TorrentReader, path: str) -> TorrentFile:
    return reader.pieces.file(reader.pieces.file_index(_clean(path)))
