"""Agreement with libtorrent on its own test torrents.

The few files in tests/data/torrents run as a quick sample; all 104 files of
libtorrent's corpus (copied, with its licence, into tests/data/libtorrent-corpus)
run every time. libtorrent is asked directly for every accepted file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from holdfast.torrents import TorrentError, parse_torrent
from tests.torrents.judge import libtorrent_accepts, libtorrent_view

LOCAL = Path(__file__).parent.parent / "data" / "torrents"
CORPUS = Path(__file__).parent.parent / "data" / "libtorrent-corpus"


def _cases(folder: Path) -> list[tuple[Path, str]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return [(folder / name, entry["expect"]) for name, entry in sorted(manifest.items())]


def _check(path: Path, expect: str) -> None:
    data = path.read_bytes()
    # the manifest and the installed libtorrent agree, or the test itself is wrong
    assert libtorrent_accepts(data) == (expect == "valid"), path.name
    if expect == "invalid":
        with pytest.raises(TorrentError) as info:
            parse_torrent(data)
        assert info.value.reason
        return
    t = parse_torrent(data)
    lt = libtorrent_view(data)
    assert t.infohash_v1 == lt.infohash_v1
    assert t.infohash_v2 == lt.infohash_v2
    assert t.file_count == lt.file_count
    assert t.total_size == lt.total_size
    assert [f.path for f in t.files] == lt.paths
    assert [f.size for f in t.files] == lt.sizes
    assert t.name == lt.name
    assert t.piece_length == lt.piece_length
    assert t.num_pieces == lt.num_pieces
    for f in t.files:
        assert not f.path.startswith("/")
        assert ".." not in f.path.split("/")
        assert "" not in f.path.split("/")


@pytest.mark.parametrize(("path", "expect"), _cases(LOCAL), ids=lambda v: getattr(v, "name", v))
def test_local_sample_agrees_with_libtorrent(path: Path, expect: str) -> None:
    _check(path, expect)


def test_full_libtorrent_corpus_agrees() -> None:
    cases = _cases(CORPUS)
    assert len(cases) == 104
    failures = []
    for path, expect in cases:
        try:
            _check(path, expect)
        except (AssertionError, TorrentError) as exc:
            failures.append(f"{path.name}: {exc!r}")
    assert failures == []
