from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from holdfast.cli.main import cli
from holdfast.cli.torrent import parse_size
from holdfast.torrents import parse_torrent
from tests.torrents.judge import libtorrent_view


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "sst"
    (root / "2024").mkdir(parents=True)
    (root / "2024" / "jan.nc").write_bytes(random.Random(1).randbytes(70_000))
    (root / "README").write_bytes(b"sea surface temperature\n")
    (root / ".DS_Store").write_bytes(b"junk")
    return root


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("flag", ["--v1", "--v2", "--hybrid"])
def test_create_inspect_verify(dataset: Path, tmp_path: Path, flag: str) -> None:
    out = tmp_path / "sst.torrent"
    code, text = run(
        "torrent", "create", str(dataset), "-o", str(out), flag, "--piece-size", "32K",
        "--tracker", "http://t/announce", "--webseed", "http://w/", "--comment", "hi",
        "--private", "-q",
    )  # fmt: skip
    assert code == 0, text
    t = parse_torrent(out.read_bytes())
    assert t.version == flag[2:]
    assert t.piece_length == 32 * 1024
    assert (t.trackers, t.webseeds, t.comment, t.private) == (
        [["http://t/announce"]],
        ["http://w/"],
        "hi",
        True,
    )
    assert [f.path for f in t.files] == ["sst/2024/jan.nc", "sst/README"]
    assert t.infohash in text
    lt = libtorrent_view(out.read_bytes())
    assert (t.infohash_v1, t.infohash_v2) == (lt.infohash_v1, lt.infohash_v2)

    code, text = run("torrent", "inspect", str(out), "--json")
    assert code == 0
    summary = json.loads(text)
    assert summary["infohash_v2"] == t.infohash_v2
    assert summary["total_size"] == 70_000 + 24
    assert [f["path"] for f in summary["files"]] == ["sst/2024/jan.nc", "sst/README"]

    code, text = run("torrent", "inspect", str(out))
    assert code == 0 and "sst/2024/jan.nc" in text and t.name in text

    code, text = run("torrent", "verify", str(out), str(dataset.parent), "-q")
    assert code == 0 and text.startswith("ok:")

    nc = dataset / "2024" / "jan.nc"
    data = bytearray(nc.read_bytes())
    data[40_000] ^= 1
    nc.write_bytes(bytes(data))
    code, text = run("torrent", "verify", str(out), str(dataset), "-q")
    assert code == 1
    assert "bad data: sst/2024/jan.nc" in text
    assert "bad pieces (1): 1" in text


def test_create_default_output_and_no_overwrite(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = run("torrent", "create", str(dataset), "-q")
    assert code == 0, text
    assert (tmp_path / "sst.torrent").exists()
    code, text = run("torrent", "create", str(dataset), "-q")
    assert code == 1 and "exists" in text
    code, text = run("torrent", "create", str(dataset), "-q", "--force")
    assert code == 0


def test_create_progress_bar(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["torrent", "create", str(dataset), "-o", str(tmp_path / "x.torrent")]
    )
    assert result.exit_code == 0
    assert "hashing" in result.output


def test_bad_input_is_a_clean_error(tmp_path: Path, dataset: Path) -> None:
    junk = tmp_path / "junk.torrent"
    junk.write_bytes(b"not a torrent")
    code, text = run("torrent", "inspect", str(junk))
    assert code == 1 and "junk.torrent" in text and "Traceback" not in text
    code, text = run("torrent", "create", str(dataset), "--piece-size", "3K", "-q")
    assert code == 1 and "at least 16 KiB" in text
    code, text = run("torrent", "create", str(dataset), "--piece-size", "lots", "-q")
    assert code == 2 and "not a size" in text
    assert not list(tmp_path.glob("*.torrent.tmp*"))


def test_parse_size() -> None:
    assert parse_size("16K") == 16384
    assert parse_size("4MiB") == 4 << 20
    assert parse_size("1g") == 1 << 30
    assert parse_size("262144") == 262144


def test_help_lists_commands() -> None:
    code, text = run("torrent", "--help")
    assert code == 0
    for name in ("create", "inspect", "verify"):
        assert name in text
