"""Hashing in child processes gives exactly what threads and libtorrent give."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import threading
import warnings
from pathlib import Path

import pytest

from holdfast.torrents import TorrentError, create_torrent, hashing, parse_torrent
from holdfast.torrents.files import list_source_files
from holdfast.torrents.hashing import Stream, StreamFile, hash_stream
from holdfast.torrents.verify import verify_data

KiB = 1024
MiB = 1024 * KiB


def write(path: Path, size: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))


def make_dataset(root: Path, kind: str) -> Path:
    if kind == "odd sizes":
        write(root / "b.bin", 3 * 64 * KiB + 17, 1)
        write(root / "a.txt", 100, 2)
        write(root / "sub" / "z.bin", 64 * KiB, 3)
        write(root / "sub" / "y" / "deep.bin", 700 * KiB + 1, 4)
        (root / "empty").write_bytes(b"")
        (root / "sub" / "also-empty").write_bytes(b"")
        write(root / "sub" / "small", 1, 5)
    elif kind == "many small files":
        rng = random.Random(7)
        for i in range(300):
            write(root / f"d{i % 7}" / f"f{i:03d}", rng.choice([0, 1, 999, 16 * KiB, 40 * KiB]), i)
    elif kind == "one file":
        write(root / "only.bin", 5 * MiB + 3, 9)
        return root / "only.bin"  # a single-file torrent
    else:  # pragma: no cover
        raise ValueError(kind)
    return root


KINDS = ["odd sizes", "many small files", "one file"]


@pytest.fixture
def small_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    # many jobs per stream, so that several children take turns and results
    # arrive out of order; windows smaller than pieces
    monkeypatch.setattr(hashing, "CHUNK_SIZE", 96 * KiB)
    monkeypatch.setattr(hashing, "WINDOW_SIZE", 16 * KiB)


def libtorrent_created(root: Path, version: str, piece_length: int) -> bytes:
    import libtorrent as lt

    flags = {"v2": lt.create_torrent.v2_only, "hybrid": 0}[version]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs = lt.file_storage()
        lt.add_files(fs, str(root))
        ct = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(ct, str(root.parent))
    data: bytes = lt.bencode(ct.generate())
    return data


def v1_pieces_by_hand(root: Path, piece_length: int, aligned: bool) -> bytes:
    """SHA-1 of each piece of the files joined in torrent order.

    ``aligned``: zeros after each file but the last up to a piece boundary.
    """
    blobs = [Path(f.path).read_bytes() for f in list_source_files(root)]
    if aligned:
        blobs = [b + bytes(-len(b) % piece_length) for b in blobs[:-1]] + blobs[-1:]
    data = b"".join(blobs)
    return b"".join(
        hashlib.sha1(data[i : i + piece_length], usedforsecurity=False).digest()
        for i in range(0, len(data), piece_length)
    )


@pytest.mark.usefixtures("small_jobs")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_processes_threads_and_libtorrent_agree(tmp_path: Path, kind: str, version: str) -> None:
    root = make_dataset(tmp_path / "ds", kind)
    piece_length = 32 * KiB
    made = {
        (processes, threads): create_torrent(
            root,
            version=version,  # type: ignore[arg-type]
            piece_length=piece_length,
            creation_date=1,
            processes=processes,
            threads=threads,
        ).data
        for processes, threads in [(True, 2), (True, 3), (False, 2), (False, 1)]
    }
    assert len(set(made.values())) == 1
    ours = parse_torrent(made[True, 3])
    if version != "v2":
        assert ours.pieces == v1_pieces_by_hand(root, piece_length, aligned=version == "hybrid")
    if version != "v1":
        theirs = parse_torrent(libtorrent_created(root, version, piece_length))
        if version == "v2":
            assert ours.infohash_v2 == theirs.infohash_v2
        # libtorrent also pads the end of the last file of a hybrid (its v1
        # file list differs), so compare the merkle trees
        roots = {f.path: f.pieces_root for f in ours.files}
        assert roots == {f.path: f.pieces_root for f in theirs.files}
        assert ours.piece_layers == theirs.piece_layers
    assert verify_data(ours, root.parent, processes=True, threads=2).ok


@pytest.mark.usefixtures("small_jobs")
@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_verify_in_processes_names_the_same_bad_pieces(tmp_path: Path, version: str) -> None:
    root = make_dataset(tmp_path / "ds", "odd sizes")
    t = create_torrent(root, version=version, piece_length=16 * KiB).torrent  # type: ignore[arg-type]
    with open(root / "sub" / "y" / "deep.bin", "r+b") as fh:
        fh.seek(300 * KiB)
        fh.write(b"\xff" * 10)
    (root / "a.txt").unlink()  # missing: read as zeros
    by_processes = verify_data(t, root.parent, processes=True, threads=2)
    by_threads = verify_data(t, root.parent, processes=False, threads=2)
    assert not by_processes.ok
    assert by_processes.bad_pieces == by_threads.bad_pieces != []
    assert by_processes.bad_files == by_threads.bad_files
    assert "ds/sub/y/deep.bin" in by_processes.bad_files
    assert "ds/a.txt" in by_processes.missing_files


@pytest.mark.usefixtures("small_jobs")
def test_progress_from_processes(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", "odd sizes")
    seen: list[tuple[int, int]] = []
    create_torrent(root, processes=True, threads=2, progress=lambda d, t: seen.append((d, t)))
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert len(seen) > 3
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def spy_children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pids: list[int] = []
    original = hashing._fork_child

    def spy(*args: object) -> hashing._Child:
        child = original(*args)  # type: ignore[arg-type]
        pids.append(child.pid)
        return child

    monkeypatch.setattr(hashing, "_fork_child", spy)
    return pids


def assert_all_reaped(pids: list[int]) -> None:
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_read_errors_in_a_child_are_torrent_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = spy_children(monkeypatch)
    path = tmp_path / "f"
    write(path, 100 * KiB, 1)
    shorter = Stream([StreamFile(path, 200 * KiB)], [0], 16 * KiB)
    with pytest.raises(TorrentError, match="became shorter"):
        hash_stream(shorter, v1=True, v2=True, threads=2, processes=True)
    missing = Stream([StreamFile(tmp_path / "gone", 100 * KiB)], [0], 16 * KiB)
    with pytest.raises(TorrentError, match="cannot read"):
        hash_stream(missing, v1=True, v2=False, threads=2, processes=True)
    assert_all_reaped(pids)


def test_a_child_that_dies_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pids = spy_children(monkeypatch)
    parent = os.getpid()

    def die(self: hashing._Worker, job: hashing.Job) -> object:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("hashed in the parent")

    monkeypatch.setattr(hashing._Worker, "__call__", die)
    root = make_dataset(tmp_path / "ds", "one file")
    with pytest.raises(TorrentError, match=r"ended unexpectedly \(signal 9\)"):
        create_torrent(root, processes=True, threads=2)
    assert_all_reaped(pids)


def test_a_bug_in_a_child_is_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: hashing._Worker, job: hashing.Job) -> object:
        raise ZeroDivisionError("broken on purpose")

    monkeypatch.setattr(hashing._Worker, "__call__", broken)
    root = make_dataset(tmp_path / "ds", "one file")
    with pytest.raises(RuntimeError, match="ZeroDivisionError: broken on purpose"):
        create_torrent(root, processes=True, threads=2)


@pytest.mark.usefixtures("small_jobs")
def test_children_stop_when_the_caller_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = spy_children(monkeypatch)
    root = make_dataset(tmp_path / "ds", "one file")

    def cancel(done: int, total: int) -> None:
        if done > total // 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_torrent(root, processes=True, threads=2, progress=cancel)
    assert len(pids) == 2
    assert_all_reaped(pids)


def test_when_processes_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    big = hashing.PROCESS_MIN_BYTES
    assert hashing._use_processes(None, 2, big)
    assert not hashing._use_processes(None, 2, big - 1)  # small: threads start faster
    assert not hashing._use_processes(None, 1, big)  # one worker: no parallelism at all
    assert not hashing._use_processes(True, 1, big)
    assert hashing._use_processes(True, 2, 1)
    assert not hashing._use_processes(False, 2, big)
    # never forked from another thread of a larger program unless asked
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(hashing._use_processes(None, 2, big)))
    thread.start()
    thread.join(timeout=10)
    assert seen == [False]
    monkeypatch.delattr(os, "fork")
    assert not hashing._use_processes(True, 2, big)


def test_cli_progress_bars_with_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from holdfast.cli.main import cli

    pids = spy_children(monkeypatch)
    monkeypatch.setattr(hashing, "PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr(hashing, "CHUNK_SIZE", 64 * KiB)
    root = make_dataset(tmp_path / "ds", "odd sizes")
    out = tmp_path / "ds.torrent"
    created = CliRunner().invoke(
        cli, ["torrent", "create", str(root), "-o", str(out), "--piece-size", "16K"]
    )
    assert created.exit_code == 0, created.output
    assert "hashing" in created.output
    assert len(pids) == 2  # hashed in two child processes while the bar was drawn
    threads_made = create_torrent(root, piece_length=16 * KiB, processes=False).torrent
    assert parse_torrent(out.read_bytes()).info_bytes == threads_made.info_bytes
    checked = CliRunner().invoke(cli, ["torrent", "verify", str(out), str(tmp_path)])
    assert checked.exit_code == 0, checked.output
    assert len(pids) == 4
    assert_all_reaped(pids)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.usefixtures("small_jobs")
def test_when_the_system_will_not_fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dataset(tmp_path / "ds", "odd sizes")
    expected = create_torrent(root, processes=False, creation_date=1).data
    before = open_fds()
    pids = spy_children(monkeypatch)
    real_fork = os.fork
    forks: list[int] = []

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    def one_fork() -> int:
        if forks:
            no_fork()
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", no_fork)
    assert create_torrent(root, processes=True, threads=2, creation_date=1).data == expected
    assert pids == []  # hashed by threads instead
    monkeypatch.setattr(os, "fork", one_fork)
    assert create_torrent(root, processes=True, threads=2, creation_date=1).data == expected
    assert len(pids) == 1  # hashed by the one child there is
    assert_all_reaped(pids)
    assert open_fds() == before  # no pipe left open


@pytest.mark.usefixtures("small_jobs")
def test_a_program_that_ignores_its_children(tmp_path: Path) -> None:
    # with SIGCHLD ignored the kernel reaps children itself; waiting for them
    # must not fail
    root = make_dataset(tmp_path / "ds", "odd sizes")
    expected = create_torrent(root, processes=False, creation_date=1).data
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        made = create_torrent(root, processes=True, threads=2, creation_date=1).data
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert made == expected


@pytest.mark.usefixtures("small_jobs")
def test_ctrl_c_is_for_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a terminal sends SIGINT to every process of the group; the children
    # carry on and the parent decides (here: it does not see one)
    pids = spy_children(monkeypatch)
    root = make_dataset(tmp_path / "ds", "one file")
    expected = create_torrent(root, processes=False, creation_date=1).data

    def interrupt_children(done: int, total: int) -> None:
        if done < total:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)

    made = create_torrent(
        root, processes=True, threads=2, creation_date=1, progress=interrupt_children
    ).data
    assert made == expected
    assert len(pids) == 2
