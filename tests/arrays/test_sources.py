"""Opening sources (torrent files, URLs, instance upload URLs) and array references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal as L

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")
pytest.importorskip("numpydantic")

from numpydantic import NDArray, Shape  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from holdfast.arrays.errors import SourceError  # noqa: E402
from holdfast.arrays.reference import ArrayReference, RemoteNDArray  # noqa: E402
from holdfast.arrays.sources import open_reader, open_zarr, torrent_url, zarr_roots  # noqa: E402
from holdfast.torrents import create_torrent  # noqa: E402
from tests.arrays.conftest import Dataset  # noqa: E402
from tests.arrays.rangeserver import RangeServer  # noqa: E402

IH = "ab" * 32


def test_torrent_url_of_upload_urls() -> None:
    assert torrent_url(f"https://h.example/uploads/{IH}") == (
        f"https://h.example/api/v1/uploads/{IH}/torrent",
        IH,
    )
    assert torrent_url(f"https://h.example/sub/api/v1/uploads/{IH.upper()}/torrent") == (
        f"https://h.example/sub/api/v1/uploads/{IH}/torrent",
        IH,
    )
    assert torrent_url("https://h.example/files/x.torrent") == (
        "https://h.example/files/x.torrent",
        None,
    )


@pytest.fixture
def instance(dataset: Dataset, tmp_path: Path) -> tuple[RangeServer, str]:
    """A folder laid out like an instance's API, serving one upload's torrent."""
    created = create_torrent(
        dataset.root / "ds", version="hybrid", align="zarr", webseeds=[dataset.server.url]
    )
    infohash = created.torrent.infohash_v2
    assert infohash is not None
    folder = tmp_path / "api/v1/uploads" / infohash
    folder.mkdir(parents=True)
    created.write(folder / "torrent")
    other = create_torrent(dataset.root / "ds", version="v1", webseeds=[dataset.server.url])
    wrong = tmp_path / "api/v1/uploads" / ("0" * 64)
    wrong.mkdir(parents=True)
    other.write(wrong / "torrent")
    return RangeServer(tmp_path), infohash


def test_open_an_instance_upload_url(dataset: Dataset, instance: tuple[RangeServer, str]) -> None:
    import holdfast.arrays

    server, infohash = instance
    with server:
        array = holdfast.arrays.open_zarr(f"{server.url}uploads/{infohash}", "ds/frames.zarr")
        np.testing.assert_array_equal(array[3], dataset.data[3])
        array.store.reader.close()
        with pytest.raises(SourceError, match="different infohash"):
            open_reader(f"{server.url}uploads/{'0' * 64}")
        with pytest.raises(SourceError, match="HTTP 404"):
            open_reader(f"{server.url}uploads/{'1' * 64}")


def test_open_zarr_needs_a_path_when_there_are_several_stores(
    dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "ds.torrent"
    create_torrent(
        dataset.root / "ds", version="v2", align="zarr", webseeds=[dataset.server.url]
    ).write(path)
    with open_reader(path) as reader:
        assert zarr_roots(reader) == ["ds/frames.zarr", "ds/sharded.zarr"]
        with pytest.raises(
            SourceError, match=r"zarr stores here: ds/frames\.zarr, ds/sharded\.zarr"
        ):
            open_zarr(reader)
    with pytest.raises(SourceError, match="unsupported source"):
        open_reader("ftp://example.org/x.torrent")


def test_remote_arrays_serialise_as_references(dataset: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "ds.torrent"
    create_torrent(
        dataset.root / "ds", version="hybrid", align="zarr", webseeds=[dataset.server.url]
    ).write(path)
    array = open_zarr(path, "ds/frames.zarr")

    class Recording(BaseModel):
        frames: RemoteNDArray[Shape[int, L[128], L[128]], np.uint16]  # type: ignore[valid-type]

    class Plain(BaseModel):
        frames: NDArray[Shape[int, L[128], L[128]], np.uint16]  # type: ignore[valid-type]

    dataset.server.stats.reset()
    recording = Recording(frames=array)  # validated from metadata
    dumped = recording.model_dump_json(round_trip=True)
    assert dataset.server.stats.bytes_sent == 0
    reference = ArrayReference.model_validate(json.loads(dumped)["frames"])
    assert reference.infohash == array.store.reader.torrent.infohash
    assert reference.path == "ds/frames.zarr"
    assert reference.metadata["shape"] == [64, 128, 128]
    assert reference.source == str(path)
    reopened = reference.open()
    np.testing.assert_array_equal(reopened[9], dataset.data[9])
    # what plain numpydantic would have done: download the whole array into the JSON
    dataset.server.stats.reset()
    Plain(frames=array).model_dump_json(round_trip=True)
    assert dataset.server.stats.bytes_sent > 0.9 * dataset.data.nbytes
    with pytest.raises(ValueError, match="Invalid shape"):
        Recording(frames=np.zeros((128, 128), dtype=np.uint16))
    array.store.reader.close()
    reopened.store.reader.close()
