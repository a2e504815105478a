"""Torrent creation speed: holdfast against mktorrent, libtorrent, torrentfile and torf.

    python benchmarks/hashing.py [--dir /tmp/holdfast-bench] [--repeat 1]
        [--wait-quiet SECONDS] [--quiet-rows SECONDS] [--no-memory] [--only TEXT...]

Two data sets, both page-cached before timing: one 1 GiB file, and 2,000
files of 64 KiB. holdfast runs as it does by default (child processes for
inputs of 32 MiB or more) and with threads only, to show the difference.
Every tool makes the same kind of torrent with the same piece length (1 MiB
for the big file; for the small files, the piece length holdfast chooses
automatically for that version). The limit is Python's
hashlib hashing the same bytes from memory on all cores. Throughput is data
bytes per second (GB = 10^9 bytes). Prints a Markdown table.

Needs: mktorrent (Debian), torrentfile and torf (PyPI) for their rows; rows
whose tool is missing are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from holdfast.torrents import create_torrent
from holdfast.torrents.files import list_source_files
from holdfast.torrents.piece_size import choose_piece_length

warnings.filterwarnings("ignore", category=DeprecationWarning)

GiB = 1 << 30
KiB = 1 << 10
CORES = os.cpu_count() or 1


def prepare(base: Path) -> tuple[Path, Path]:
    big = base / "big" / "one-gib.bin"
    small = base / "small" / "files"
    if not big.exists() or big.stat().st_size != GiB:
        big.parent.mkdir(parents=True, exist_ok=True)
        with open(big, "wb") as fh:
            for _ in range(GiB // (64 << 20)):
                fh.write(os.urandom(64 << 20))
    if not small.exists() or len(list(small.iterdir())) != 2000:
        shutil.rmtree(small, ignore_errors=True)
        small.mkdir(parents=True)
        for i in range(2000):
            (small / f"f{i:04d}.bin").write_bytes(os.urandom(64 * KiB))
    return big, small


def warm(path: Path) -> None:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        with open(p, "rb") as fh:
            while fh.read(16 << 20):
                pass


def _cpu() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


RUNS = {"timed": 0, "not quiet": 0}


def timed(fn: Callable[[], object], repeat: int, quiet: float = 0) -> tuple[float, float]:
    """Best (wall seconds, CPU seconds) of ``repeat`` runs.

    With ``quiet``, each run first waits up to that many seconds for a second
    in which the cores were idle (other work on a shared machine comes in bursts).
    """
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        RUNS["timed"] += 1
        if quiet and wait_for_quiet(CORES - 0.2, quiet, sample=1.0, pause=0.5) < CORES - 0.2:
            RUNS["not quiet"] += 1
        c0 = _cpu()
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0, _cpu() - c0))
    return best


def idle_cores(seconds: float = 3.0) -> float:
    """How many cores sat idle over the last ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return CORES * (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(
    min_idle: float, timeout: float, sample: float = 3.0, pause: float = 10.0
) -> float:
    """Wait (up to ``timeout`` s) until ``min_idle`` cores are idle; returns the idle cores."""
    deadline = time.monotonic() + timeout
    idle = idle_cores(sample)
    while idle < min_idle and time.monotonic() < deadline:
        time.sleep(pause)
        idle = idle_cores(sample)
    return idle


# -- the contenders ---------------------------------------------------------------


def holdfast(
    path: Path, version: str, piece_length: int | None, processes: bool | None = None
) -> Callable[[], object]:
    return lambda: create_torrent(
        path,
        version=version,  # type: ignore[arg-type]
        piece_length=piece_length,
        processes=processes,
    )


def hashlib_limit(path: Path, algorithm: str) -> Callable[[], object]:
    """Hash the data, already in memory, on all cores (called to load it, untimed)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    blobs = [p.read_bytes() for p in files]
    views = [memoryview(b) for b in blobs]
    step = 1 << 20
    chunks = [v[i : i + step] for v in views for i in range(0, len(v), step)]
    per_core = [chunks[k::CORES] for k in range(CORES)]
    fn = getattr(hashlib, algorithm)

    def work(part: list[memoryview]) -> None:
        for c in part:
            fn(c).digest()

    def run() -> None:
        with ThreadPoolExecutor(CORES) as pool:
            list(pool.map(work, per_core))

    return run


def mktorrent(path: Path, piece_length: int, out: Path) -> Callable[[], object]:
    def run() -> None:
        out.unlink(missing_ok=True)
        subprocess.run(
            ["mktorrent", "-t", str(CORES), "-l", str(piece_length.bit_length() - 1),
             "-a", "http://127.0.0.1/announce", "-o", str(out), str(path)],
            check=True, capture_output=True,
        )  # fmt: skip

    return run


def libtorrent(path: Path, version: str, piece_length: int) -> Callable[[], object]:
    import libtorrent as lt

    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[version]

    def run() -> None:
        fs = lt.file_storage()
        lt.add_files(fs, str(path))
        ct = lt.create_torrent(fs, piece_length, flags=flags)
        lt.set_piece_hashes(ct, str(path.parent))
        lt.bencode(ct.generate())

    return run


def torrentfile(path: Path, version: str, piece_length: int, out: Path) -> Callable[[], object]:
    from torrentfile.torrent import TorrentFile, TorrentFileHybrid, TorrentFileV2

    cls = {"v1": TorrentFile, "v2": TorrentFileV2, "hybrid": TorrentFileHybrid}[version]

    def run() -> None:
        cls(path=str(path), piece_length=piece_length, progress=0).write(str(out))

    return run


def torf(path: Path, piece_length: int) -> Callable[[], object]:
    import torf as torf_module

    def run() -> None:
        t = torf_module.Torrent(path=str(path), piece_size=piece_length)
        t.generate(threads=CORES)
        t.dump()

    return run


# VmHWM (peak RSS) is per address space, so a fresh process starts from zero
# (ru_maxrss would inherit this large process's peak across fork).
_MEMORY_PROBE = """
import resource, sys
from holdfast.torrents import create_torrent

def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

start = kib("VmHWM:")
create_torrent(sys.argv[1], version="hybrid", piece_length=1 << 20)
print(start, kib("VmHWM:"), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_memory(path: Path) -> tuple[int, int, int]:
    """Peak RSS in KiB of a fresh process: after imports, at the end, and of its
    largest hashing child (which shares most of its pages with the parent)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def have_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "holdfast-bench")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (best is kept)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for the cores to be (almost) idle",
    )
    parser.add_argument(
        "--quiet-rows",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each timed run, wait up to this long for an idle second",
    )
    parser.add_argument(
        "--memory", action=argparse.BooleanOptionalAction, default=True,
        help="also measure peak memory on 1 GiB and a sparse 8 GiB file",
    )  # fmt: skip
    parser.add_argument(
        "--only", nargs="+", metavar="TEXT", help="only the rows whose name contains one of these"
    )
    args = parser.parse_args()
    big, small = prepare(args.dir)
    out = args.dir / "out.torrent"
    small_sizes = [f.size for f in list_source_files(small)]
    small_pl = {v: choose_piece_length(small_sizes, v) for v in ("v1", "v2", "hybrid")}

    Run = Callable[[], object]

    def now(fn: Run) -> Callable[[], Run]:
        return lambda: fn

    def contenders(path: Path, piece: dict[str, int]) -> list[tuple[str, Callable[[], Run]]]:
        """(row name, a function that sets the row up and returns what to time)."""
        # the hashlib rows load their data only when their turn comes, so the
        # benchmark process stays small for the others (forking a process
        # holding 2 GiB costs tens of milliseconds, which no real caller pays)
        c: list[tuple[str, Callable[[], Run]]] = [
            ("hashlib sha1, all cores (limit)", lambda: hashlib_limit(path, "sha1")),
            ("hashlib sha256, all cores (limit)", lambda: hashlib_limit(path, "sha256")),
        ]
        for v in ("v1", "v2", "hybrid"):
            c.append((f"holdfast {v}", now(holdfast(path, v, piece[v]))))
        for v in ("v1", "v2", "hybrid"):
            c.append((f"holdfast {v}, threads", now(holdfast(path, v, piece[v], False))))
        if shutil.which("mktorrent"):
            c.append((f"mktorrent v1 ({CORES} threads)", now(mktorrent(path, piece["v1"], out))))
        for v in ("v1", "v2", "hybrid"):
            c.append((f"libtorrent {v}", now(libtorrent(path, v, piece[v]))))
        if have_module("torrentfile"):
            for v in ("v1", "v2", "hybrid"):
                c.append((f"torrentfile {v}", now(torrentfile(path, v, piece[v], out))))
        if have_module("torf"):
            c.append(("torf v1", now(torf(path, piece["v1"]))))
        if args.only:
            c = [(name, make) for name, make in c if any(t in name for t in args.only)]
        return c

    idle = wait_for_quiet(CORES - 0.2, args.wait_quiet) if args.wait_quiet else idle_cores()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for label, path, piece in (
        ("1 GiB file", big, {"v1": 1 << 20, "v2": 1 << 20, "hybrid": 1 << 20}),
        ("2,000 x 64 KiB", small, small_pl),
    ):
        warm(path)
        size = GiB if path.is_file() else sum(small_sizes)
        for name, make in contenders(path, piece):
            fn = make()
            wall, cpu = timed(fn, args.repeat, args.quiet_rows)
            del fn
            results.setdefault(name, {})[label] = (wall, cpu)
            print(f"  {label:>16}  {name:<36} {wall:7.3f} s  {size / wall / 1e9:5.2f} GB/s"
                  f"  cpu {cpu:6.3f} s", file=sys.stderr)  # fmt: skip

    sizes = {"1 GiB file": GiB, "2,000 x 64 KiB": sum(small_sizes)}
    lib = {v: results.get(f"libtorrent {v}", {}) for v in ("v1", "v2", "hybrid")}
    print(
        f"{CORES} cores, {idle:.1f} of them idle just before the run and {idle_cores():.1f} "
        "just after (the machine is shared); "
        + (
            f"{RUNS['timed'] - RUNS['not quiet']} of {RUNS['timed']} timed runs started "
            "after an idle second; "
            if args.quiet_rows
            else ""
        )
        + "automatic piece lengths for the small files: "
        + ", ".join(f"{v} {pl // KiB} KiB" for v, pl in small_pl.items())
    )
    print()
    header = "| tool | " + " | ".join(
        f"{label}: s | GB/s | x libtorrent | CPU s" for label in sizes
    )
    print(header + " |")
    print("|---|" + "---:|---:|---:|---:|" * len(sizes))
    for name, by_case in results.items():
        version = next((v for v in ("hybrid", "v2", "v1") if re.search(rf"\b{v}\b", name)), None)
        cells = []
        for label in sizes:
            if label not in by_case:
                cells += ["", "", "", ""]
                continue
            wall, cpu = by_case[label]
            ref = lib.get(version or "", {}).get(label) if version else None
            ratio = f"{ref[0] / wall:.2f}" if ref else ""
            cells += [f"{wall:.3f}", f"{sizes[label] / wall / 1e9:.2f}", ratio, f"{cpu:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.memory:
        sparse = args.dir / "sparse" / "eight-gib.bin"
        sparse.parent.mkdir(parents=True, exist_ok=True)
        with open(sparse, "wb") as fh:
            fh.truncate(8 * GiB)
        print()
        print(
            "| holdfast hybrid, 1 MiB pieces | RSS after imports | peak RSS "
            "| peak RSS of a hashing process |"
        )
        print("|---|---:|---:|---:|")
        for label, path in (("1 GiB file", big), ("8 GiB file (sparse)", sparse)):
            start, peak, child = peak_memory(path)
            print(
                f"| {label} | {start / 1024:.0f} MiB | {peak / 1024:.0f} MiB "
                f"| {child / 1024:.0f} MiB |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
