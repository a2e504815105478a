from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from holdfast.torrents import Torrent, TorrentError, bencode, create_torrent, parse_torrent
from tests.torrents.judge import libtorrent_accepts, libtorrent_view

PIECE = 16384


def v1_info(files: list[tuple[list[bytes], int]] | None = None, **extra: Any) -> dict[bytes, Any]:
    files = files if files is not None else [([b"a.txt"], 10), ([b"sub", b"b.bin"], 20000)]
    total = sum(size for _, size in files)
    info: dict[bytes, Any] = {
        b"name": b"data",
        b"piece length": PIECE,
        b"pieces": b"\x01" * 20 * (-(-total // PIECE)),
        b"files": [{b"length": size, b"path": path} for path, size in files],
    }
    info.update({k.replace("_", " ").encode(): v for k, v in extra.items()})
    return info


def torrent_bytes(
    info: dict[bytes, Any], extra: dict[bytes, Any] | None = None, **root: Any
) -> bytes:
    meta = {b"info": info, **{k.encode(): v for k, v in root.items()}, **(extra or {})}
    return bencode.encode(meta)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(os.urandom(100))
    (root / "big.bin").write_bytes(os.urandom(3 * PIECE + 5))
    (root / "sub" / "c.bin").write_bytes(os.urandom(PIECE))
    (root / "sub" / "empty").write_bytes(b"")
    return root


def decoded(data: bytes) -> dict[bytes, Any]:
    return bencode.decode(data)


# -- the model -----------------------------------------------------------------


def test_v1_multi_file_model() -> None:
    data = torrent_bytes(
        v1_info(private=1),
        {
            b"announce-list": [[b"http://t1/announce", b" http://t2/a"], [], [b"udp://t3:1"]],
            b"url-list": [b"http://seed/", b"http://seed/", b""],
            b"comment": b"hello",
            b"created by": b"me",
            b"creation date": 1700000000,
        },
        announce=b"http://t1/announce",
    )
    t = parse_torrent(data)
    assert t.canonical is True
    info_bytes = bencode.encode(v1_info(private=1))
    assert t.info_bytes == info_bytes
    assert t.infohash_v1 == hashlib.sha1(info_bytes).hexdigest()
    assert t.infohash_v2 is None and t.infohash_v2_truncated is None
    assert t.version == "v1"
    assert t.name == "data"
    assert t.piece_length == PIECE
    assert t.file_count == 2
    assert t.total_size == 20010
    assert [(f.path, f.size, f.offset) for f in t.files] == [
        ("data/a.txt", 10, 0),
        ("data/sub/b.bin", 20000, 10),
    ]
    assert t.files[0].pieces_root is None
    assert t.trackers == [["http://t1/announce", "http://t2/a"], ["udp://t3:1"]]
    assert t.webseeds == ["http://seed/"]
    assert t.private is True
    assert (t.comment, t.created_by, t.creation_date) == ("hello", "me", 1700000000)
    assert t.num_pieces == 2
    lt = libtorrent_view(data)
    assert (t.infohash_v1, t.file_count, t.total_size) == (lt.infohash_v1, 2, lt.total_size)


def test_announce_alone_is_one_tier() -> None:
    t = parse_torrent(torrent_bytes(v1_info(), announce=b"http://t/announce"))
    assert t.trackers == [["http://t/announce"]]


def test_single_file_v1() -> None:
    info = {b"name": b"one.bin", b"length": 5, b"piece length": PIECE, b"pieces": b"x" * 20}
    t = parse_torrent(torrent_bytes(info))
    assert [(f.path, f.size, f.offset) for f in t.files] == [("one.bin", 5, 0)]
    assert t.magnet() == f"magnet:?xt=urn:btih:{t.infohash_v1}&dn=one.bin"


def test_similar_and_collections() -> None:
    other = bytes(range(20))
    info = v1_info(similar=[other, b"short"], collections=[b"sea-temp"])
    t = parse_torrent(torrent_bytes(info, similar=[b"\xff" * 20], collections=[b"noaa"]))
    assert t.similar == [other.hex(), "ff" * 20]
    assert t.collections == ["sea-temp", "noaa"]


@pytest.mark.parametrize("version", ["v2", "hybrid"])
def test_v2_and_hybrid_model(dataset: Path, version: str) -> None:
    created = create_torrent(dataset, version=version, piece_length=PIECE)  # type: ignore[arg-type]
    t = parse_torrent(created.data)
    assert t.version == version
    assert t.infohash_v2 == hashlib.sha256(t.info_bytes).hexdigest()
    assert t.infohash_v2_truncated == t.infohash_v2[:40]
    if version == "hybrid":
        assert t.infohash_v1 == hashlib.sha1(t.info_bytes).hexdigest()
    else:
        assert t.infohash_v1 is None
    assert [f.path for f in t.files] == [
        "dataset/a.txt",
        "dataset/big.bin",
        "dataset/sub/c.bin",
        "dataset/sub/empty",
    ]
    assert all(len(f.pieces_root or b"") == 32 for f in t.files if f.size)
    assert t.files[3].pieces_root is None
    if version == "hybrid":
        # every file starts on a piece boundary; pad files are hidden
        assert [f.offset for f in t.files] == [0, PIECE, 5 * PIECE, 6 * PIECE]
    else:
        assert all(f.offset is None for f in t.files)
    assert t.total_size == 100 + 3 * PIECE + 5 + PIECE
    lt = libtorrent_view(created.data)
    assert (t.infohash_v1, t.infohash_v2) == (lt.infohash_v1, lt.infohash_v2)
    assert t.num_pieces == lt.num_pieces
    magnet = t.magnet(trackers=False)
    assert f"xt=urn:btmh:1220{t.infohash_v2}" in magnet
    assert ("xt=urn:btih:" in magnet) == (version == "hybrid")


def test_magnet_escapes_name_and_trackers() -> None:
    t = parse_torrent(
        torrent_bytes(v1_info(name=b"a b&c"), {b"announce-list": [[b"http://t/a?x=1&y=2"]]})
    )
    assert t.magnet() == (
        f"magnet:?xt=urn:btih:{t.infohash_v1}&dn=a%20b%26c&tr=http%3A%2F%2Ft%2Fa%3Fx%3D1%26y%3D2"
    )
    assert t.magnet(name=False, trackers=False) == f"magnet:?xt=urn:btih:{t.infohash_v1}"


# -- bencoding leniency ---------------------------------------------------------


def test_unsorted_v1_info_is_accepted_and_hashed_as_found() -> None:
    info = b"d4:name4:temp6:lengthi425e12:piece lengthi16384e6:pieces20:" + b"a" * 20 + b"e"
    data = b"d4:info" + info + b"e"
    t = parse_torrent(data)
    assert t.info_bytes == info
    assert t.infohash_v1 == hashlib.sha1(info).hexdigest() == libtorrent_view(data).infohash_v1
    assert t.canonical is False
    with pytest.raises(TorrentError, match="unsorted dictionary key"):
        parse_torrent(data, strict=True)


def test_trailing_bytes_are_ignored_like_libtorrent_but_not_in_strict_mode() -> None:
    data = torrent_bytes(v1_info()) + b"\n"
    assert parse_torrent(data).infohash_v1 == libtorrent_view(data).infohash_v1
    with pytest.raises(TorrentError, match="after the end"):
        parse_torrent(data, strict=True)


def test_irregular_v2_info_dict_is_refused(dataset: Path) -> None:
    data = create_torrent(dataset, version="v2", piece_length=PIECE).data
    assert b"6:lengthi100e" in data
    bad = data.replace(b"6:lengthi100e", b"6:lengthi0100e")
    assert not libtorrent_accepts(bad)
    with pytest.raises(TorrentError, match="canonical"):
        parse_torrent(bad)


# -- paths never leave the download folder ------------------------------------


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        ([b"..", b"..", b"etc", b"passwd"], "data/_/_/etc/passwd"),
        ([b"/etc/passwd"], "data/etcpasswd"),
        ([b"a/../../b"], "data/a....b"),
        ([b"\\", b"x"], "data/_/x"),
        ([b"", b"x"], "data/_/x"),
        ([b".", b"x"], "data/_/x"),
        ([b"ok\x00\x1fname"], "data/ok_name"),
        ([b"bad\xffutf8"], "data/bad_utf8"),
        ([b"evil\xe2\x80\xaetxt.exe"], "data/eviltxt.exe"),
        ([b"x" * 300 + b".txt"], "data/" + "x" * 240 + ".txt"),
    ],
)
def test_hostile_paths_are_cleaned_like_libtorrent(components: list[bytes], expected: str) -> None:
    data = torrent_bytes(v1_info([(components, 10)]))
    t = parse_torrent(data)
    assert [f.path for f in t.files] == [expected]
    assert libtorrent_view(data).paths == [expected]


@pytest.mark.parametrize(("name", "expected"), [(b"..", None), (b"/", None), (b"a/b", "ab")])
def test_hostile_names(name: bytes, expected: str | None) -> None:
    data = torrent_bytes(v1_info(name=name))
    t = parse_torrent(data)
    # an unusable name is replaced by the infohash, as libtorrent does
    assert t.name == (expected or t.infohash_v1)
    assert t.name == libtorrent_view(data).name
    assert all(f.path.startswith(t.name + "/") for f in t.files)


def test_duplicate_paths_are_renamed_like_libtorrent() -> None:
    files = [([b"a.txt"], 1), ([b"A.TXT"], 2), ([b"a.txt"], 3), ([b"d"], 4), ([b"d", b"x"], 5)]
    data = torrent_bytes(v1_info(files))
    t = parse_torrent(data)
    expected = ["data/a.txt", "data/A.1.TXT", "data/a.2.txt", "data/d.1", "data/d/x"]
    assert [f.path for f in t.files] == expected
    assert libtorrent_view(data).paths == expected


def test_too_many_duplicates_are_refused() -> None:
    data = torrent_bytes(v1_info([([b"same"], 1)] * 40))
    assert not libtorrent_accepts(data)
    with pytest.raises(TorrentError, match="same path"):
        parse_torrent(data)


def test_symlink_targets_stay_inside() -> None:
    files = [
        {b"length": 10, b"path": [b"real"]},
        {b"attr": b"l", b"length": 0, b"path": [b"inside"], b"symlink path": [b"data", b"real"]},
        {b"attr": b"l", b"length": 0, b"path": [b"outside"], b"symlink path": [b"..", b"etc"]},
    ]
    info = {b"name": b"data", b"piece length": PIECE, b"pieces": b"x" * 20, b"files": files}
    t = parse_torrent(torrent_bytes(info))
    assert [(f.path, f.attr, f.symlink_target) for f in t.files] == [
        ("data/real", "", None),
        ("data/inside", "l", "data/real"),
        ("data/outside", "l", "data/outside"),  # points at itself, as libtorrent does
    ]


# -- refusals --------------------------------------------------------------------


def _refusals() -> list[tuple[str, bytes, str]]:
    good = v1_info()
    cases: list[tuple[str, bytes, str]] = [
        ("not a dict", b"l1:ae", "must be a dictionary"),
        ("no info", bencode.encode({b"announce": b"x"}), "no info dictionary"),
        ("info not a dict", bencode.encode({b"info": [1]}), "no info dictionary"),
        ("garbage", b"\x00\x01garbage", "unexpected byte"),
    ]

    def variant(label: str, fragment: str, **changes: Any) -> None:
        info = copy.deepcopy(good)
        for key, value in changes.items():
            k = key.replace("_", " ").encode()
            if value is None:
                info.pop(k, None)
            else:
                info[k] = value
        cases.append((label, torrent_bytes(info), fragment))

    variant("no name", "no name", name=None)
    variant("name is a number", "no name", name=5)
    variant("no piece length", "piece length", piece_length=None)
    variant("zero piece length", "piece length", piece_length=0)
    variant("huge piece length", "piece length", piece_length=1 << 30)
    variant("no pieces", "no piece hashes", pieces=None)
    variant("short pieces", "piece hashes are", pieces=b"x" * 20)
    variant("files not dicts", "not a dictionary", files=[1])
    variant("negative length", "invalid file length", files=[{b"length": -1, b"path": [b"a"]}])
    variant("no length", "invalid file length", files=[{b"path": [b"a"]}])
    variant("no path", "no path", files=[{b"length": 1}])
    variant("path not strings", "not a string", files=[{b"length": 1, b"path": [b"a", 1]}])
    variant("empty", "no files", files=[])
    variant(
        "all empty",
        "total size 0",
        files=[{b"length": 0, b"path": [b"a"]}],
        pieces=b"",
    )
    variant("too many pieces", "pieces, more than", files=[{b"length": 1 << 40, b"path": [b"a"]}])
    variant("file tree without meta version", "meta version", file_tree={b"a": {}})
    variant("unknown meta version", "unknown torrent meta version", meta_version=3)
    variant("v2 without file tree", "no file tree", meta_version=2)
    return cases


@pytest.mark.parametrize(("label", "data", "fragment"), _refusals(), ids=lambda v: v)
def test_refusals_are_torrent_errors_with_reasons(label: str, data: bytes, fragment: str) -> None:
    assert not libtorrent_accepts(data), label
    with pytest.raises(TorrentError) as info:
        parse_torrent(data)
    assert fragment in info.value.reason


def _v2_variants(dataset: Path) -> list[tuple[str, bytes, str]]:
    base = decoded(create_torrent(dataset, version="hybrid", piece_length=PIECE).data)
    root_big = base[b"info"][b"file tree"][b"big.bin"][b""][b"pieces root"]
    out: list[tuple[str, bytes, str]] = []

    def variant(label: str, fragment: str, change: Any) -> None:
        meta = copy.deepcopy(base)
        change(meta)
        out.append((label, bencode.encode(meta), fragment))

    def tree(meta: dict[bytes, Any]) -> dict[bytes, Any]:
        return meta[b"info"][b"file tree"]

    variant(
        "v2 piece length not a power of two",
        "power of two",
        lambda m: m[b"info"].__setitem__(b"piece length", 3 * PIECE),
    )
    variant(
        "pad file in the tree",
        "pad files",
        lambda m: tree(m)[b"a.txt"][b""].__setitem__(b"attr", b"p"),
    )
    variant(
        "zero root",
        "all-zero pieces root",
        lambda m: tree(m)[b"a.txt"][b""].__setitem__(b"pieces root", bytes(32)),
    )
    variant(
        "missing root", "no valid pieces root", lambda m: tree(m)[b"a.txt"][b""].pop(b"pieces root")
    )
    variant("empty name in tree", "empty name", lambda m: tree(m).__setitem__(b"", {}))
    variant(
        "layer of wrong size",
        "piece layer is",
        lambda m: m[b"piece layers"].__setitem__(root_big, b"\x00" * 32),
    )
    variant(
        "layer that does not hash to its root",
        "does not hash",
        lambda m: m[b"piece layers"].__setitem__(root_big, b"\x01" * 128),
    )
    variant(
        "layer for an unknown root",
        "no file",
        lambda m: m[b"piece layers"].__setitem__(b"\x07" * 32, b"\x00" * 32),
    )
    variant(
        "v1 and v2 disagree",
        "different files",
        lambda m: m[b"info"][b"files"][0].__setitem__(b"path", [b"other.txt"]),
    )
    variant(
        "v1 sizes disagree",
        "different files",
        lambda m: m[b"info"][b"files"][0].__setitem__(b"length", 99),
    )
    return out


def test_v2_refusals(dataset: Path) -> None:
    for label, data, fragment in _v2_variants(dataset):
        assert not libtorrent_accepts(data), label
        with pytest.raises(TorrentError) as info:
            parse_torrent(data)
        assert fragment in info.value.reason, (label, info.value.reason)


def test_v2_without_piece_layers_is_accepted(dataset: Path) -> None:
    meta = decoded(create_torrent(dataset, version="v2", piece_length=PIECE).data)
    del meta[b"piece layers"]
    data = bencode.encode(meta)
    assert libtorrent_accepts(data)
    assert parse_torrent(data).piece_layers == {}


def test_absurdly_deep_paths_are_refused() -> None:
    # no file system holds 1,001 nested folders; refusing keeps cleaning cheap
    data = torrent_bytes(v1_info([([b"a"] * 1001, 10)]))
    with pytest.raises(TorrentError, match="more than 1000 parts"):
        parse_torrent(data)
    assert parse_torrent(torrent_bytes(v1_info([([b"a"] * 1000, 10)]))).file_count == 1


def test_huge_tracker_lists_are_deduplicated() -> None:
    urls = [b"http://t%d/a" % (i % 5000) for i in range(100_000)]
    t = parse_torrent(torrent_bytes(v1_info(), {b"announce-list": [urls], b"url-list": urls}))
    assert len(t.trackers[0]) == 5000 and len(t.webseeds) == 5000
    assert t.trackers[0][:2] == ["http://t0/a", "http://t1/a"]


def test_oversized_input_is_refused_before_decoding() -> None:
    with pytest.raises(TorrentError, match="more than the 100 allowed"):
        parse_torrent(b"d" + b"0:" * 100 + b"e", max_size=100)


def test_non_bytes_are_refused() -> None:
    with pytest.raises(TorrentError):
        parse_torrent("d4:infodee")  # type: ignore[arg-type]


# -- piece arithmetic ----------------------------------------------------------


def test_piece_span_v1_crosses_files() -> None:
    t = parse_torrent(torrent_bytes(v1_info([([b"a"], 10), ([b"b"], 40000), ([b"c"], 0)])))
    span = t.piece_span("data/b", 0, 40000)
    assert (span.first, span.last, span.start) == (0, 2, 10)
    assert span.pieces == range(0, 3)
    assert span.file_pieces is None
    span = t.piece_span("data/b", PIECE, 1)
    assert (span.first, span.last, span.start) == (1, 1, 10)
    assert t.piece_span("data/c").pieces == range(2, 2)  # empty file: no piece
    assert t.files_in_piece(0) == [0, 1]
    assert t.files_in_piece(2) == [1]
    with pytest.raises(TorrentError, match="outside"):
        t.piece_span("data/b", 39999, 2)
    with pytest.raises(TorrentError, match="no file"):
        t.piece_span("data/zzz")
    with pytest.raises(TorrentError, match="out of range"):
        t.files_in_piece(3)


@pytest.mark.parametrize("version", ["v2", "hybrid"])
def test_piece_span_aligned(dataset: Path, version: str) -> None:
    t = parse_torrent(create_torrent(dataset, version=version, piece_length=PIECE).data)  # type: ignore[arg-type]
    span = t.piece_span("dataset/big.bin", PIECE + 7, PIECE)
    # big.bin starts at piece 1 (a.txt is padded to a full piece)
    assert (span.first, span.last, span.start) == (2, 3, 7)
    assert span.file_pieces == range(1, 3)
    span = t.piece_span("dataset/sub/c.bin")
    assert span.pieces == range(5, 6) and span.file_pieces == range(0, 1)
    assert t.files_in_piece(4) == [1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_piece_span_matches_libtorrent_map_file(dataset: Path) -> None:
    import libtorrent as lt

    for version in ("v1", "v2", "hybrid"):
        data = create_torrent(dataset, version=version, piece_length=PIECE).data  # type: ignore[arg-type]
        t = parse_torrent(data)
        ti = lt.torrent_info(data)
        fs = ti.files()
        index = {fs.file_path(i): i for i in range(fs.num_files())}
        for f in t.files:
            if not f.size:
                continue
            for offset, length in ((0, 1), (f.size - 1, 1), (f.size // 2, f.size - f.size // 2)):
                span = t.piece_span(f.path, offset, length)
                request = ti.map_file(index[f.path], offset, length)
                assert (span.first, span.start) == (request.piece, request.start), (version, f.path)


# -- scale -------------------------------------------------------------------------


def test_hundred_thousand_files() -> None:
    n = 100_000
    files = [
        {b"length": i % 5000 + 1, b"path": [b"d%d" % (i % 100), b"f%06d.bin" % i]} for i in range(n)
    ]
    total = sum(f[b"length"] for f in files)
    info = {
        b"name": b"big",
        b"piece length": 1 << 20,
        b"pieces": b"\x00" * 20 * (-(-total // (1 << 20))),
        b"files": files,
    }
    t = parse_torrent(bencode.encode({b"info": info}))
    assert isinstance(t, Torrent)
    assert t.file_count == n
    assert t.total_size == total
    assert t.files[-1].path == "big/d99/f099999.bin"
    assert t.files[-1].offset == total - files[-1][b"length"]
    assert t.piece_span("big/d7/f000007.bin").first == 0


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize("name", [b"", b".", b"/", b"\xef\xbb\xbf"])
def test_folder_names_that_clean_to_nothing(tmp_path: Path, version: str, name: bytes) -> None:
    # libtorrent names the folder "_" when the name is empty, and after the v1
    # infohash when cleaning leaves nothing of it
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a").write_bytes(os.urandom(40_000))
    (root / "b").write_bytes(os.urandom(100))
    meta = bencode.decode(create_torrent(root, version=version).data)  # type: ignore[arg-type]
    meta[b"info"][b"name"] = name
    data = bencode.encode(meta)
    ours = parse_torrent(data)
    theirs = libtorrent_view(data)
    v1_hash = hashlib.sha1(ours.info_bytes).hexdigest()
    assert ours.name == theirs.name == ("_" if name == b"" else v1_hash)
    assert [f.path for f in ours.files] == theirs.paths
