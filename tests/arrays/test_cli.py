"""`holdfast arrays info` and `holdfast arrays get` against a web seed on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

np = pytest.importorskip("numpy")
pytest.importorskip("zarr")

from holdfast.cli.arrays import parse_selection  # noqa: E402
from holdfast.cli.main import cli  # noqa: E402
from tests.arrays.conftest import Dataset  # noqa: E402


@pytest.fixture
def torrent_file(dataset: Dataset, tmp_path: Path) -> Path:
    from holdfast.torrents import create_torrent

    path = tmp_path / "ds.torrent"
    create_torrent(
        dataset.root / "ds", version="hybrid", align="zarr", webseeds=[dataset.server.url]
    ).write(path)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["arrays", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_info_reads_metadata_only(dataset: Dataset, torrent_file: Path) -> None:
    dataset.server.stats.reset()
    code, output = run("info", str(torrent_file), "--json")
    assert code == 0, output
    summary = json.loads(output)
    nodes = {n["path"]: n for n in summary["nodes"]}
    assert nodes["ds/frames.zarr"] == {
        "path": "ds/frames.zarr",
        "type": "array",
        "shape": [64, 128, 128],
        "dtype": "uint16",
        "chunks": [4, 128, 128],
        "shards": None,
        "zarr_format": 3,
    }
    assert nodes["ds/sharded.zarr"]["chunks"] == [1, 64, 64]
    assert nodes["ds/sharded.zarr"]["shards"] == [16, 128, 128]
    # only the two zarr.json documents were asked for
    assert sorted(dataset.server.stats.paths) == [
        "/ds/frames.zarr/zarr.json",
        "/ds/sharded.zarr/zarr.json",
    ]
    code, output = run("info", str(torrent_file))
    assert code == 0
    assert "ds/frames.zarr" in output
    assert "uint16" in output


def test_get_writes_the_slice(dataset: Dataset, torrent_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "slice.npy"
    code, output = run(
        "get", str(torrent_file), "ds/frames.zarr", "--slice", "10:14, :, 5", "-o", str(out)
    )
    assert code == 0, output
    np.testing.assert_array_equal(np.load(out), dataset.data[10:14, :, 5])
    assert "wrote" in output
    # refuses to overwrite without --force, and leaves the file as it was
    before = out.read_bytes()
    code, output = run("get", str(torrent_file), "ds/frames.zarr", "--slice", "0", "-o", str(out))
    assert code == 1
    assert "exists; use --force" in output
    assert out.read_bytes() == before
    code, _ = run(
        "get", str(torrent_file), "ds/sharded.zarr", "--slice", "-1", "-o", str(out), "--force"
    )
    assert code == 0
    np.testing.assert_array_equal(np.load(out), dataset.data[-1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ds", "--slice", "0"], "no zarr array at 'ds'"),
        (["ds/frames.zarr", "--slice", "0, __import__('os')"], "is not an index or a slice"),
        (["ds/frames.zarr", "--slice", "0,0,0,0"], "does not fit shape"),
        (["ds/frames.zarr", "--slice", "::0"], "step cannot be zero"),
        (["ds/frames.zarr", "--max-bytes", "1000"], "over --max-bytes"),
    ],
)
def test_get_refuses_bad_requests(
    torrent_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "x.npy"
    code, output = run("get", str(torrent_file), *args[:1], "-o", str(out), *args[1:])
    assert code != 0
    assert message in output
    assert not out.exists()
    assert not (tmp_path / "x.npy.part").exists()


def test_bad_sources(tmp_path: Path) -> None:
    code, output = run("info", "magnet:?xt=urn:btih:" + "a" * 40)
    assert code == 1
    assert "names no trackers and no peers" in output
    code, output = run("info", "x.torrent", "--peer", "nonsense")
    assert code == 2
    assert "is not HOST:PORT" in output
    code, output = run("info", str(tmp_path / "missing.torrent"))
    assert code == 1
    assert "cannot read" in output
    bogus = tmp_path / "bogus.torrent"
    bogus.write_bytes(b"d4:spami1ee")
    code, output = run("info", str(bogus))
    assert code == 1
    assert "not a usable torrent" in output


def test_torrent_without_web_seeds(dataset: Dataset, tmp_path: Path) -> None:
    from holdfast.torrents import create_torrent

    path = tmp_path / "plain.torrent"
    create_torrent(dataset.root / "ds", version="v2", align="zarr").write(path)
    code, output = run("info", str(path))
    assert code == 1
    assert "lists no web seeds" in output
    code, output = run("info", str(path), "--webseed", dataset.server.url, "--json")
    assert code == 0, output


def test_parse_selection() -> None:
    assert parse_selection("0:10, :, 5") == (slice(0, 10), slice(None), 5)
    assert parse_selection("...,-1") == (Ellipsis, -1)
    assert parse_selection("::2, 1:") == (slice(None, None, 2), slice(1, None))


def test_without_the_extra_the_command_says_what_to_install() -> None:
    # zarr made unimportable: the rest of the CLI still loads, `arrays` explains itself
    code = (
        "import sys; sys.modules['zarr'] = None\n"
        "from holdfast.cli.main import main\n"
        "main(['arrays', 'info', 'x.torrent'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "pip install 'holdfast[arrays]'" in result.stderr
    assert "zarr" in result.stderr


def test_light_imports_stay_light() -> None:
    code = (
        "import sys\n"
        "import holdfast.arrays, holdfast.arrays.metadata, holdfast.cli.arrays\n"
        "heavy = ('numpy', 'zarr', 'numpydantic', 'fsspec', 'h5py')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
