"""Property-based fuzzing of the decoder and the parser (a short run; the long one is
benchmarks/fuzz_torrents.py).

Whatever the input: only BencodeError / TorrentError; an accepted torrent keeps
every path inside its folder; and libtorrent reaches the same verdict with the
same infohashes, file count and total size.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holdfast.torrents import BencodeError, TorrentError, bencode, parse_torrent
from tests.torrents.judge import libtorrent_view

SEEDS = [
    p.read_bytes()
    for p in sorted((Path(__file__).parent.parent / "data" / "torrents").glob("*.torrent"))
]

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    b"info", b"name", b"piece length", b"pieces", b"length", b"files", b"path", b"file tree",
    b"meta version", b"piece layers", b"pieces root", b"attr", b"announce", b"url-list", b"",
]  # fmt: skip
# integers beyond int64 are misread by libtorrent (we refuse them), so stay inside
INTS = st.one_of(st.sampled_from([0, 1, -1, 2, 16384, 32768, 2**31]), st.integers(-(2**62), 2**62))
LEAVES = st.one_of(
    INTS,
    st.sampled_from([b"..", b"/", b"", b"a", b"\xff", b"x" * 20, b"y" * 32]),
    st.binary(max_size=40),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.binary(max_size=6)), children, max_size=5
        ),
    ),
    max_leaves=25,
)


def check(data: bytes) -> None:
    try:
        t = parse_torrent(data)
    except TorrentError as exc:
        assert exc.reason
        t = None
    try:
        theirs = libtorrent_view(data)
    except RuntimeError:
        theirs = None
    assert (t is None) == (theirs is None), (t, theirs)
    if t is None or theirs is None:
        return
    assert (t.infohash_v1, t.infohash_v2) == (theirs.infohash_v1, theirs.infohash_v2)
    assert (t.file_count, t.total_size) == (theirs.file_count, theirs.total_size)
    assert [f.path for f in t.files] == theirs.paths
    if t.infohash_v1:
        assert t.infohash_v1 == hashlib.sha1(t.info_bytes).hexdigest()
    for f in t.files:
        parts = f.path.split("/")
        assert not f.path.startswith("/") and ".." not in parts and "" not in parts


@FUZZ
@given(st.binary(max_size=400))
def test_decoders_only_raise_bencode_errors(data: bytes) -> None:
    for decode in (bencode.decode, bencode.decode_tolerant):
        with contextlib.suppress(BencodeError):
            decode(data)
    check(data)


@FUZZ
@given(VALUES)
def test_round_trip_and_arbitrary_structures(value: Any) -> None:
    data = bencode.encode(value)
    assert bencode.decode(data) == value
    assert bencode.decode_tolerant(data).value == value
    check(data)
    check(bencode.encode({b"info": value}))


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=0, max_size=3)),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_torrents(seed: bytes, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray(seed)
    for where, replacement in edits:
        i = int(where * len(data))
        data[i : i + 1] = replacement
    check(bytes(data))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_structurally_mutated_torrents(seed: bytes, draw: st.DataObject) -> None:
    try:
        meta = bencode.decode_tolerant(seed).value
    except BencodeError:
        return  # a seed that is refused as bencoding (too deep) has no structure to mutate
    if not isinstance(meta, dict) or not isinstance(meta.get(b"info"), dict):
        return
    info = meta[b"info"]
    key = draw.draw(st.sampled_from([*info.keys(), *KEYS]))
    if draw.draw(st.booleans()) and key in info:
        del info[key]
    else:
        info[key] = draw.draw(VALUES)
    check(bencode.encode(meta))


def test_fuzz_benchmark_short_run() -> None:
    """CI runs the fuzzing benchmark briefly: it must find no crash."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_torrents.py"
    result = subprocess.run(
        [sys.executable, str(script), "--count", "3000", "--seed", "11", "--no-speed"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| 3,000 |" in result.stdout
