"""Fuzz the torrent parser: many mutated torrents, no exception but TorrentError.

    python benchmarks/fuzz_torrents.py [--count 100000] [--seed 1] [--save-dir DIR]

It ends with the time to parse a 100,000-file v1 and hybrid torrent (best of
3), against libtorrent and against bencode decoding alone.

Inputs are derived from valid seeds (v1, v2 and hybrid torrents made here,
the sample torrents in tests/data/torrents, and libtorrent's corpus when
present) by byte-level mutations (flips, insertions, deletions, splices,
changed numbers) and structure-level ones (keys dropped, values replaced by
other types, hostile path components, lengths changed), then re-encoded.

For every input it checks that `parse_torrent` returns or raises
`TorrentError` and nothing else, that an accepted torrent keeps every path
inside its folder and hashes its exact info bytes, and it compares the
verdict with libtorrent's (same accept/refuse, same infohashes, file count
and total size). It prints a Markdown table and exits 1 on any crash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import libtorrent as lt

from holdfast.torrents import TorrentError, bencode, create_torrent, parse_torrent

warnings.filterwarnings("ignore", category=DeprecationWarning)
ROOT = Path(__file__).resolve().parent.parent
PAD = int(lt.file_storage.flag_pad_file)

HOSTILE = [
    b"..", b".", b"", b"/", b"\\", b"/etc/passwd", b"a/../../b", b"\x00", b"\xff\xfe",
    b"\xe2\x80\xae", b"con", b"x" * 300, b"_____padding_file_", b"\xed\xa0\x80",
    b"A" * 241 + b".txt",
]  # fmt: skip
KEYS = [
    b"info", b"name", b"name.utf-8", b"piece length", b"pieces", b"length", b"files", b"path",
    b"path.utf-8", b"file tree", b"meta version", b"piece layers", b"pieces root", b"attr",
    b"symlink path", b"announce", b"announce-list", b"url-list", b"private", b"similar",
    b"collections", b"", b"mtime",
]  # fmt: skip


def make_seeds() -> list[bytes]:
    seeds: list[bytes] = []
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for name, size in [("a", 10), ("d/b", 40000), ("d/e", 0), ("c", 16384), ("z", 70000)]:
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(rng.randbytes(size))
        for version in ("v1", "v2", "hybrid"):
            for piece_length in (16384, 32768):
                seeds.append(
                    create_torrent(
                        root,
                        version=version,  # type: ignore[arg-type]
                        piece_length=piece_length,
                        trackers=["http://t/a", ["udp://u:1", "udp://v:2"]],
                        webseeds=["http://w/"],
                        similar=["ab" * 20],
                        collections=["c"],
                    ).data
                )
            seeds.append(create_torrent(root / "z", version=version, piece_length=16384).data)
    folders = [
        ROOT / "tests" / "data" / "torrents",
        ROOT.parent / "shared" / "corpus" / "libtorrent",
    ]
    for folder in folders:
        if folder.is_dir():
            seeds.extend(p.read_bytes() for p in sorted(folder.glob("*.torrent")))
    return seeds


# -- mutations ---------------------------------------------------------------------

_NUMBER = re.compile(rb"i-?\d+e|\d+:")


def mutate_bytes(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        if not b:
            b.extend(rng.randbytes(4))
        op = rng.randrange(8)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del b[i : i + rng.randint(1, 16)]
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 64)]
        elif op == 5:
            del b[i:]
        elif op == 6:
            other = rng.choice(seeds)
            j = rng.randrange(len(other))
            b = b[:i] + bytearray(other[j:])
        else:
            matches = list(_NUMBER.finditer(b))
            if matches:
                m = rng.choice(matches)
                text = m.group()
                value = rng.choice([0, 1, -1, 16384, 2**31, 2**63, 10**25, rng.randint(-9, 99999)])
                new = b"i%de" % value if text.startswith(b"i") else b"%d:" % abs(value)
                b[m.start() : m.end()] = new
    return bytes(b)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice([0, 1, -1, 16384, 2**40, -(2**63), rng.randint(-5, 10**6)])
    if kind == 1:
        return rng.choice([*HOSTILE, rng.randbytes(rng.choice([0, 1, 20, 32, 64]))])
    if kind == 2:
        return rng.choice(KEYS)
    if kind == 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def mutate_structure(rng: random.Random, data: bytes) -> bytes:
    try:
        value = bencode.decode_tolerant(data).value
    except TorrentError:
        return data
    for _ in range(rng.randint(1, 3)):
        _mutate_node(rng, value, 0)
    try:
        return bencode.encode(value)
    except TorrentError:
        return data


def _mutate_node(rng: random.Random, node: Any, depth: int) -> None:
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        child = node[key]
        if (isinstance(child, dict | list) and child) and rng.random() < 0.7 and depth < 8:
            _mutate_node(rng, child, depth + 1)
            return
        op = rng.randrange(4)
        if op == 0:
            del node[key]
        elif op == 1:
            node[key] = random_value(rng)
        elif op == 2:
            node[rng.choice(KEYS)] = random_value(rng)
        elif isinstance(child, int):
            node[key] = child + rng.choice([-1, 1, 16384, -child, 2**32])
        elif isinstance(child, bytes):
            node[key] = rng.choice(HOSTILE)
    elif isinstance(node, list) and node:
        i = rng.randrange(len(node))
        child = node[i]
        if isinstance(child, dict | list) and child and rng.random() < 0.7 and depth < 8:
            _mutate_node(rng, child, depth + 1)
        elif rng.random() < 0.3:
            del node[i]
        elif rng.random() < 0.5:
            node.insert(i, random_value(rng))
        else:
            node[i] = rng.choice(HOSTILE) if isinstance(child, bytes) else random_value(rng)


# -- checks ------------------------------------------------------------------------


def libtorrent_facts(data: bytes) -> tuple[Any, ...] | None:
    try:
        ti = lt.torrent_info(data)
    except RuntimeError:
        return None
    h = ti.info_hashes()
    fs = ti.files()
    real = [i for i in range(fs.num_files()) if not int(fs.file_flags(i)) & PAD]
    return (
        str(h.v1) if h.has_v1() else None,
        str(h.v2) if h.has_v2() else None,
        len(real),
        sum(fs.file_size(i) for i in real),
    )


def check_accepted(t: Any) -> str | None:
    if t.infohash_v1 is not None and t.infohash_v1 != hashlib.sha1(t.info_bytes).hexdigest():
        return "v1 infohash is not the SHA-1 of the info bytes"
    for f in t.files:
        parts = f.path.split("/")
        if f.path.startswith("/") or ".." in parts or "" in parts or "." in parts:
            return f"unsafe path {f.path!r}"
    return None


def big_torrents(n: int = 100_000) -> dict[str, bytes]:
    """A v1 and a hybrid torrent of ``n`` small files in 100 folders (hashes are random)."""
    rng = random.Random(5)
    pl = 16384
    names = sorted((b"d%02d" % (i % 100), b"f%06d.bin" % i) for i in range(n))
    sizes = [1000 + (i * 7919) % 15000 for i in range(n)]
    v1_files = [{b"length": s, b"path": list(p)} for p, s in zip(names, sizes, strict=True)]
    v1 = {
        b"name": b"big",
        b"piece length": pl,
        b"files": v1_files,
        b"pieces": rng.randbytes(20 * -(-sum(sizes) // pl)),
    }
    tree: dict[bytes, Any] = {}
    padded: list[dict[bytes, Any]] = []
    for i, ((d, f), s) in enumerate(zip(names, sizes, strict=True)):
        tree.setdefault(d, {})[f] = {b"": {b"length": s, b"pieces root": rng.randbytes(32)}}
        padded.append({b"length": s, b"path": [d, f]})
        if i < n - 1:
            padded.append({b"attr": b"p", b"length": pl - s, b"path": [b".pad", b"%d" % (pl - s)]})
    hybrid = {
        b"name": b"big",
        b"piece length": pl,
        b"meta version": 2,
        b"file tree": tree,
        b"files": padded,
        b"pieces": rng.randbytes(20 * n),
    }
    return {
        "v1, 100,000 files": bencode.encode({b"info": v1}),
        "hybrid, 100,000 files": bencode.encode({b"info": hybrid}),
    }


def parse_speed() -> None:
    from fastbencode import bdecode

    limits = {"max_decode_tokens": 10_000_000, "max_pieces": 10_000_000}
    print("| torrent | size | holdfast parse_torrent | libtorrent torrent_info | decode only |")
    print("|---|---:|---:|---:|---:|")
    for label, data in big_torrents().items():
        timings = []
        for fn in (
            lambda data=data: parse_torrent(data),
            # libtorrent's default limits refuse the hybrid (too many bencoded values)
            lambda data=data: lt.torrent_info(data, limits),
            lambda data=data: bdecode(data),
        ):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            timings.append(best)
        print(
            f"| {label} | {len(data) / 1e6:.1f} MB | "
            + " | ".join(f"{t:.3f} s" for t in timings)
            + " |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save-dir", type=Path, help="write crashing and disagreeing inputs here")
    parser.add_argument("--no-libtorrent", action="store_true", help="skip the comparison")
    parser.add_argument("--no-speed", action="store_true", help="skip the 100,000-file timing")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    seeds = make_seeds()
    counts: Counter[str] = Counter()
    crashes: list[tuple[bytes, str]] = []
    disagreements: list[tuple[bytes, str]] = []
    parse_time = 0.0
    started = time.perf_counter()
    for n in range(args.count):
        seed = rng.choice(seeds)
        r = rng.random()
        if r < 0.45:
            data = mutate_bytes(rng, seed, seeds)
        elif r < 0.9:
            data = mutate_structure(rng, seed)
        elif r < 0.95:
            data = bencode.encode(random_value(rng))
        else:
            data = rng.randbytes(rng.randint(0, 200))
        t0 = time.perf_counter()
        try:
            t = parse_torrent(data)
        except TorrentError:
            t = None
        except Exception as exc:
            crashes.append((data, f"{type(exc).__name__}: {exc}"))
            counts["crash"] += 1
            continue
        finally:
            parse_time += time.perf_counter() - t0
        counts["accepted" if t is not None else "refused"] += 1
        if t is not None:
            problem = check_accepted(t)
            if problem:
                crashes.append((data, problem))
                counts["invariant broken"] += 1
        if args.no_libtorrent:
            continue
        theirs = libtorrent_facts(data)
        ours = None if t is None else (t.infohash_v1, t.infohash_v2, t.file_count, t.total_size)
        if (ours is None) != (theirs is None):
            kind = (
                "we accept, libtorrent refuses"
                if theirs is None
                else "we refuse, libtorrent accepts"
            )
            counts[kind] += 1
            disagreements.append((data, kind))
        elif ours is not None and ours != theirs:
            counts["both accept, facts differ"] += 1
            disagreements.append((data, f"facts differ: {ours} vs {theirs}"))
        else:
            counts["agree with libtorrent"] += 1
        if (n + 1) % 20000 == 0:
            print(f"  {n + 1} inputs...", file=sys.stderr)
    elapsed = time.perf_counter() - started

    if args.save_dir:
        args.save_dir.mkdir(parents=True, exist_ok=True)
        for i, (data, why) in enumerate(crashes + disagreements):
            (args.save_dir / f"{i:05d}.torrent").write_bytes(data)
            (args.save_dir / f"{i:05d}.txt").write_text(why + "\n")

    print(
        "| inputs | seeds | accepted | refused | crashes (not TorrentError) | parse time | rate |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.count:,} | {len(seeds)} | {counts['accepted']:,} | {counts['refused']:,} | "
        f"{counts['crash'] + counts['invariant broken']} | {parse_time:.1f} s | "
        f"{args.count / parse_time:,.0f} inputs/s |"
    )
    if not args.no_libtorrent:
        print()
        print("| verdict compared with libtorrent | inputs |")
        print("|---|---:|")
        for key in (
            "agree with libtorrent",
            "we refuse, libtorrent accepts",
            "we accept, libtorrent refuses",
            "both accept, facts differ",
        ):
            print(f"| {key} | {counts[key]:,} |")
    print(f"\n(total wall time {elapsed:.1f} s, seed {args.seed})")
    if not args.no_speed:
        print()
        parse_speed()
    for data, why in crashes[:10]:
        print("CRASH:", why, json.dumps(data[:200].decode("latin-1")), file=sys.stderr)
    for data, why in disagreements[:10]:
        print("DISAGREE:", why, json.dumps(data[:300].decode("latin-1")), file=sys.stderr)
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
