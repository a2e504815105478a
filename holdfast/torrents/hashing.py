"""Reading and hashing a piece stream on every core.

The stream is the concatenation of a torrent's files, with padding where
files are aligned to pieces. It is cut into chunks of a few MiB; each worker
thread reads a chunk into its own buffer (``os.preadv``) and hashes it:
SHA-1 per piece for v1, SHA-256 per 16 KiB block and the merkle subtree of
each piece for v2. ``hashlib`` and ``preadv`` release the GIL, so the threads
run in parallel; memory is one buffer per thread plus small results, whatever
the size of the data.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from holdfast.torrents.errors import TorrentError
from holdfast.torrents.merkle import BLOCK_SIZE, merkle_root, pad_hash

__all__ = ["Stream", "StreamFile", "StreamHashes", "file_root", "hash_stream"]

#: Called as ``progress(bytes_done, bytes_total)`` from the calling thread.
ProgressCallback = Callable[[int, int], None]

# Bytes per job handed to a thread (rounded to whole pieces; at least one piece).
CHUNK_SIZE = 8 * 1024 * 1024
# Bytes read and hashed at a time: small enough to stay in the CPU cache.
WINDOW_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamFile:
    #: None for a file that is missing (verification reads it as zeros)
    path: str | Path | None
    size: int


@dataclass(slots=True)
class Stream:
    files: list[StreamFile]
    #: padding after each file
    pads: list[int]
    piece_length: int

    @property
    def data_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(slots=True)
class StreamHashes:
    #: SHA-1 of every piece of the stream (when v1 hashes were asked for)
    v1: list[bytes] = field(default_factory=list)
    #: file index -> v2 piece hashes (or, for a file of at most one piece, its root)
    v2: dict[int, list[bytes]] = field(default_factory=dict)


def file_root(pieces: list[bytes], size: int, piece_length: int) -> tuple[bytes, bytes]:
    """(pieces root, piece layer) of a file from its v2 piece hashes.

    For a file of at most one piece, ``pieces`` holds its root and the layer is empty.
    """
    if size <= piece_length:
        return pieces[0], b""
    height = (piece_length // BLOCK_SIZE).bit_length() - 1
    return merkle_root(pieces, pad=pad_hash(height)), b"".join(pieces)


@dataclass(slots=True)
class Job:
    """One chunk of the piece stream: what to read where, and what to hash."""

    #: byte length of the chunk (a whole number of pieces, except at the end)
    length: int
    #: the chunk's bytes in order: (file index or -1 for padding, offset in file,
    #: offset in chunk, length)
    parts: list[tuple[int, int, int, int]]
    #: (file index, offset in chunk, length, file fits in one piece) for v2 hashing
    segments: list[tuple[int, int, int, bool]]
    data_bytes: int


def _jobs(stream: Stream, chunk: int, do_v2: bool) -> Iterator[Job]:
    """Cut the piece stream into chunks of ``chunk`` bytes."""
    piece_length = stream.piece_length
    job = Job(0, [], [], 0)
    for index, f in enumerate(stream.files):
        remaining = f.size
        small = f.size <= piece_length
        offset = 0
        while remaining:
            n = min(remaining, chunk - job.length)
            job.parts.append((index, offset, job.length, n))
            if do_v2:
                job.segments.append((index, job.length, n, small))
            job.length += n
            job.data_bytes += n
            offset += n
            remaining -= n
            if job.length == chunk:
                yield job
                job = Job(0, [], [], 0)
        pad = stream.pads[index]
        while pad:
            n = min(pad, chunk - job.length)
            job.parts.append((-1, 0, job.length, n))
            job.length += n
            pad -= n
            if job.length == chunk:
                yield job
                job = Job(0, [], [], 0)
    if job.length:
        yield job


class _Worker:
    """Reads and hashes chunks, one small window at a time.

    A window (at most 1 MiB, never more than a piece) is read into a buffer
    that stays in the CPU cache while SHA-1 and SHA-256 run over it: copying
    from the page cache and hashing then cost little more than hashing alone.
    Each thread keeps its own buffer.
    """

    def __init__(self, files: list[StreamFile], chunk: int, piece_length: int, do_v1: bool) -> None:
        self.files = files
        self.chunk = chunk
        self.piece_length = piece_length
        # a window holds whole pieces, or a whole number of windows make a piece
        self.window = min(chunk, WINDOW_SIZE)
        self.do_v1 = do_v1
        self.local = threading.local()
        self.zeros = bytes(self.window)

    def _buffer(self) -> bytearray:
        buf: bytearray | None = getattr(self.local, "buf", None)
        if buf is None:
            buf = bytearray(self.window)
            self.local.buf = buf
        return buf

    def _fill(
        self,
        view: memoryview,
        parts: list[tuple[int, int, int, int]],
        index: int,
        lo: int,
        hi: int,
        fds: dict[int, int],
    ) -> int:
        """Copy stream bytes ``lo..hi`` of the chunk into ``view``; returns the next part index."""
        while index < len(parts):
            file_index, file_offset, start, length = parts[index]
            end = start + length
            if start >= hi:
                break
            a = max(start, lo)
            b = min(end, hi)
            target = view[a - lo : b - lo]
            path = None if file_index < 0 else self.files[file_index].path
            if path is None:
                # padding, or a missing file when verifying: zeros
                if file_index >= 0 or self.do_v1:
                    target[:] = self.zeros[: b - a]
            else:
                fd = fds.get(file_index)
                if fd is None:
                    for old in list(fds):
                        os.close(fds.pop(old))
                    try:
                        # never through a symlink: only the files we listed are read
                        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    except OSError as exc:
                        raise TorrentError(f"cannot read {path}: {exc.strerror}") from None
                    fds[file_index] = fd
                got = 0
                position = file_offset + (a - start)
                try:
                    while got < b - a:
                        n = os.preadv(fd, [target[got:]], position + got)
                        if n <= 0:
                            raise TorrentError(f"{path} became shorter while it was being hashed")
                        got += n
                except OSError as exc:
                    raise TorrentError(f"cannot read {path}: {exc.strerror}") from None
            target.release()
            if end > hi:
                break
            index += 1
        return index

    def __call__(self, job: Job) -> tuple[list[bytes], list[tuple[int, list[bytes]]]]:
        piece_length = self.piece_length
        window = self.window
        per_piece = piece_length // BLOCK_SIZE
        sha1 = hashlib.sha1
        sha256 = hashlib.sha256
        view = memoryview(self._buffer())
        fds: dict[int, int] = {}
        v1: list[bytes] = []
        v2: list[tuple[int, list[bytes]]] = []
        piece_sha1: Any = None
        segments = job.segments
        seg = 0  # first segment not finished
        blocks: list[bytes] = []  # block hashes of the current piece of segment ``seg``
        pieces: list[bytes] = []  # finished piece hashes of segment ``seg``
        part = 0
        try:
            for lo in range(0, job.length, window):
                hi = min(lo + window, job.length)
                part = self._fill(view, job.parts, part, lo, hi, fds)
                data = view[: hi - lo]
                if self.do_v1:
                    if piece_length <= window:
                        v1.extend(
                            sha1(data[k : k + piece_length], usedforsecurity=False).digest()
                            for k in range(0, hi - lo, piece_length)
                        )
                    else:
                        if piece_sha1 is None:
                            piece_sha1 = sha1(usedforsecurity=False)
                        piece_sha1.update(data)
                        if hi % piece_length == 0 or hi == job.length:
                            v1.append(piece_sha1.digest())
                            piece_sha1 = None
                while seg < len(segments):
                    index, start, size, small = segments[seg]
                    end = start + size
                    if start >= hi:
                        break
                    a = max(start, lo)
                    b = min(end, hi)
                    while a < b:
                        # up to the end of the file's current piece
                        stop = min(b, start + ((a - start) // piece_length + 1) * piece_length)
                        blocks.extend(
                            sha256(data[j - lo : min(j + BLOCK_SIZE, stop) - lo]).digest()
                            for j in range(a, stop, BLOCK_SIZE)
                        )
                        if stop == end or (stop - start) % piece_length == 0:
                            if small:
                                pieces.append(merkle_root(blocks))
                            else:
                                pieces.append(merkle_root(blocks, width=per_piece))
                            blocks = []
                        a = stop
                    if b < end:
                        break
                    v2.append((index, pieces))
                    pieces = []
                    seg += 1
                data.release()
        finally:
            view.release()
            for fd in fds.values():
                os.close(fd)
        if seg < len(segments):
            v2.append((segments[seg][0], pieces))
        return v1, v2


def hash_stream(
    stream: Stream,
    *,
    v1: bool,
    v2: bool,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> StreamHashes:
    """Hash the stream in parallel; results are in stream order."""
    piece_length = stream.piece_length
    workers = max(1, threads or os.cpu_count() or 1)
    chunk = max(piece_length, CHUNK_SIZE // piece_length * piece_length)
    worker = _Worker(stream.files, chunk, piece_length, v1)

    result = StreamHashes()
    done = 0
    total = stream.data_size
    # Enough jobs queued to keep every thread busy, few enough to bound memory:
    # results are small, buffers are one per thread.
    max_in_flight = workers * 2
    pending: deque[tuple[Future[Any], int]] = deque()

    def collect_one() -> None:
        nonlocal done
        future, data_bytes = pending.popleft()
        digests, per_file = future.result()
        result.v1.extend(digests)
        for index, hashes in per_file:
            result.v2.setdefault(index, []).extend(hashes)
        done += data_bytes
        if progress is not None:
            progress(done, total)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        try:
            for job in _jobs(stream, chunk, v2):
                pending.append((pool.submit(worker, job), job.data_bytes))
                while len(pending) >= max_in_flight or (pending and pending[0][0].done()):
                    collect_one()
            while pending:
                collect_one()
        except BaseException:
            for future, _ in pending:
                future.cancel()
            raise
    return result
