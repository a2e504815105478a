"""Reading and hashing a piece stream on every core.

The stream is the concatenation of a torrent's files, with padding where
files are aligned to pieces. It is cut into chunks of a few MiB; each worker
reads a chunk into its own buffer (``os.preadv``) and hashes it: SHA-1 per
piece for v1, SHA-256 per 16 KiB block and the merkle subtree of each piece
for v2. Memory is one buffer per worker plus small results, whatever the size
of the data.

The workers are forked child processes for large streams (each with its own
interpreter, so nothing serialises them: see "child processes" below) and
threads otherwise (``hashlib`` and ``preadv`` release the GIL, which is
enough when there is little to hash and a fork would cost more than it saves).
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import selectors
import signal
import struct
import threading
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from holdfast.torrents.errors import TorrentError
from holdfast.torrents.merkle import BLOCK_SIZE, merkle_root, pad_hash

__all__ = ["Stream", "StreamFile", "StreamHashes", "file_root", "hash_stream"]

#: Called as ``progress(bytes_done, bytes_total)`` from the calling thread.
ProgressCallback = Callable[[int, int], None]

# Bytes per job handed to a worker (rounded to whole pieces; at least one piece).
CHUNK_SIZE = 8 * 1024 * 1024
# Bytes read and hashed at a time: small enough to stay in the CPU cache.
WINDOW_SIZE = 1024 * 1024
# Streams at least this long are hashed in child processes rather than threads
# (a fork costs a few milliseconds; below this the threads are as fast).
PROCESS_MIN_BYTES = 32 * 1024 * 1024


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
                        # whole 16 KiB blocks, then the file's last, shorter one
                        first, last = a - lo, stop - lo
                        whole_end = last - (last - first) % BLOCK_SIZE
                        blocks += [
                            sha256(data[j : j + BLOCK_SIZE]).digest()
                            for j in range(first, whole_end, BLOCK_SIZE)
                        ]
                        if whole_end < last:
                            blocks.append(sha256(data[whole_end:last]).digest())
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


def _stream_length(stream: Stream) -> int:
    return stream.data_size + sum(stream.pads)


def _use_processes(processes: bool | None, workers: int, length: int) -> bool:
    if workers < 2 or not hasattr(os, "fork"):
        return False
    if processes is not None:
        return processes
    # Forking from a thread of a larger program (a server's worker thread, say)
    # copies whatever locks other threads hold; the main thread of a command
    # is the safe and common case.
    return length >= PROCESS_MIN_BYTES and threading.current_thread() is threading.main_thread()


def hash_stream(
    stream: Stream,
    *,
    v1: bool,
    v2: bool,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    processes: bool | None = None,
) -> StreamHashes:
    """Hash the stream in parallel; results are in stream order.

    ``threads`` is the number of workers (default: the number of cores).
    ``processes`` chooses child processes (True) or threads (False) for them;
    by default, processes for streams of at least :data:`PROCESS_MIN_BYTES`
    when called from the main thread on a platform that forks. Both give the
    same hashes.
    """
    piece_length = stream.piece_length
    workers = max(1, threads or os.cpu_count() or 1)
    chunk = max(piece_length, CHUNK_SIZE // piece_length * piece_length)
    worker = _Worker(stream.files, chunk, piece_length, v1)
    length = _stream_length(stream)

    result = StreamHashes()
    done = 0
    total = stream.data_size
    with ExitStack() as stack:
        pool = None
        count = -(-length // chunk)
        if _use_processes(processes, workers, length):
            # None when the system will not fork (process limits, say): threads then
            pool = _ChildPool.start(worker, stream, chunk, v2, min(workers, count))
        if pool is not None:
            stack.enter_context(pool)
            results = pool.results(count)
        else:
            results = _run_threads(worker, stream, chunk, v2, workers)
        stack.enter_context(closing(results))
        for data_bytes, (digests, per_file) in results:
            result.v1.extend(digests)
            for index, hashes in per_file:
                result.v2.setdefault(index, []).extend(hashes)
            done += data_bytes
            if progress is not None:
                progress(done, total)
    return result


#: What a worker returns for a job: v1 piece hashes, (file index, v2 hashes) pairs.
JobResult = tuple[list[bytes], list[tuple[int, list[bytes]]]]


def _run_threads(
    worker: _Worker, stream: Stream, chunk: int, do_v2: bool, workers: int
) -> Generator[tuple[int, JobResult], None, None]:
    """(data bytes, result) of every job in order, hashed by a pool of threads."""
    # Enough jobs queued to keep every thread busy, few enough to bound memory:
    # results are small, buffers are one per thread.
    max_in_flight = workers * 2
    pending: deque[tuple[Future[JobResult], int]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        try:
            for job in _jobs(stream, chunk, do_v2):
                pending.append((pool.submit(worker, job), job.data_bytes))
                while len(pending) >= max_in_flight or (pending and pending[0][0].done()):
                    future, data_bytes = pending.popleft()
                    yield data_bytes, future.result()
            while pending:
                future, data_bytes = pending.popleft()
                yield data_bytes, future.result()
        finally:
            for future, _ in pending:
                future.cancel()


# -- child processes ----------------------------------------------------------------
#
# Threads share one interpreter lock: each hashlib call releases it while it
# hashes, but taking it back, the 64-byte merkle hashes (too short to release
# it) and the loop itself serialise the threads, and with both cores busy the
# hand-offs cost 10-25% more CPU time for v2. Forked children run the same
# worker with an interpreter each. The parent hands out job numbers (a few
# bytes over a pipe, at most two in flight per child); each child walks the
# same deterministic job list, hashes the jobs it is given and sends back the
# small results, which the parent puts in order. Nothing else crosses the pipes.

_FRAME = struct.Struct("<Q")
_IN_FLIGHT = 2


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or None at end of file before the first byte."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = os.read(fd, n - got)
        if not part:
            if got:
                raise EOFError("pipe closed in the middle of a message")
            return None
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _child_main(
    worker: _Worker, stream: Stream, chunk: int, do_v2: bool, jobs_fd: int, results_fd: int
) -> None:
    """Hash the jobs whose numbers arrive on ``jobs_fd`` (increasing) until it closes."""
    jobs = enumerate(_jobs(stream, chunk, do_v2))
    position, job = -1, None
    while True:
        raw = _read_exact(jobs_fd, _FRAME.size)
        if raw is None:
            return
        (number,) = _FRAME.unpack(raw)
        while position < number:
            position, job = next(jobs)
        if job is None:  # pragma: no cover - job numbers start at 0
            raise RuntimeError("no job")
        message: tuple[Any, ...]
        try:
            message = ("ok", number, job.data_bytes, worker(job))
        except TorrentError as exc:
            message = ("error", number, str(exc))
        except Exception:
            message = ("failed", number, traceback.format_exc())
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(results_fd, _FRAME.pack(len(data)) + data)


@dataclass(slots=True)
class _Child:
    pid: int
    jobs_fd: int
    results_fd: int
    in_flight: int = 0
    reaped: bool = False


def _fork_child(
    worker: _Worker, stream: Stream, chunk: int, do_v2: bool, siblings: list[_Child]
) -> _Child:
    fds: list[int] = []
    try:
        jobs_r, jobs_w = os.pipe()
        fds += (jobs_r, jobs_w)
        results_r, results_w = os.pipe()
        fds += (results_r, results_w)
        pid = os.fork()
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    if pid == 0:  # the child: never returns
        code = 1
        try:
            # keep only our own pipe ends, so each child sees the end of its job pipe
            for fd in (
                jobs_w,
                results_r,
                *(f for c in siblings for f in (c.jobs_fd, c.results_fd)),
            ):
                os.close(fd)
            gc.disable()  # short-lived, no cycles: spare the parent's pages from copying
            # Ctrl-C reaches the whole process group: the parent stops the children
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _child_main(worker, stream, chunk, do_v2, jobs_r, results_w)
            code = 0
        finally:
            # no atexit handlers, no flushing the parent's buffers
            os._exit(code)
    os.close(jobs_r)
    os.close(results_w)
    return _Child(pid, jobs_w, results_r)


class _ChildPool:
    """Forked children hashing jobs the parent hands out; a context manager that
    always ends and reaps them (killed if the work did not finish)."""

    def __init__(self, children: list[_Child]) -> None:
        self.children = children
        self.finished = False

    @classmethod
    def start(
        cls, worker: _Worker, stream: Stream, chunk: int, do_v2: bool, workers: int
    ) -> _ChildPool | None:
        children: list[_Child] = []
        for _ in range(workers):
            try:
                children.append(_fork_child(worker, stream, chunk, do_v2, children))
            except OSError:
                break  # work with the children we have, or with threads
        return cls(children) if children else None

    def __enter__(self) -> _ChildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self.children:
            os.close(child.jobs_fd)  # a child waiting for work ends here
            if not self.finished and not child.reaped:
                with suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        for child in self.children:
            if not child.reaped:
                # ChildProcessError: reaped already (SIGCHLD ignored by the program)
                with suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)
            os.close(child.results_fd)

    def results(self, count: int) -> Generator[tuple[int, JobResult], None, None]:
        """(data bytes, result) of each of the ``count`` jobs, in order."""
        next_job = 0

        def hand_out(child: _Child) -> None:
            nonlocal next_job
            while child.in_flight < _IN_FLIGHT and next_job < count:
                try:
                    _write_all(child.jobs_fd, _FRAME.pack(next_job))
                except BrokenPipeError:
                    return  # it died: its results pipe reports that next
                child.in_flight += 1
                next_job += 1

        wanted = 0
        ready: dict[int, tuple[int, JobResult]] = {}
        with selectors.DefaultSelector() as selector:
            for child in self.children:
                selector.register(child.results_fd, selectors.EVENT_READ, child)
                hand_out(child)
            while wanted < count:
                for key, _ in selector.select():
                    child = key.data
                    message = _receive(child)
                    if message[0] == "error":
                        raise TorrentError(message[2])
                    if message[0] == "failed":
                        raise RuntimeError(f"hashing in a child process failed:\n{message[2]}")
                    _, number, data_bytes, job_result = message
                    ready[number] = (data_bytes, job_result)
                    child.in_flight -= 1
                    hand_out(child)
                while wanted in ready:
                    yield ready.pop(wanted)
                    wanted += 1
        self.finished = True


def _receive(child: _Child) -> tuple[Any, ...]:
    try:
        raw = _read_exact(child.results_fd, _FRAME.size)
        if raw is not None:
            (size,) = _FRAME.unpack(raw)
            data = _read_exact(child.results_fd, size)
            if data is not None:
                message: tuple[Any, ...] = pickle.loads(data)  # noqa: S301 - our own child
                return message
    except EOFError:
        pass
    how = ""
    with suppress(ChildProcessError):
        _, status = os.waitpid(child.pid, 0)
        child.reaped = True
        how = (
            f" (signal {os.WTERMSIG(status)})"
            if os.WIFSIGNALED(status)
            else f" (code {os.waitstatus_to_exitcode(status)})"
        )
    raise TorrentError(f"a hashing process ended unexpectedly{how}")
