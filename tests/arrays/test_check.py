"""Declared shapes and dtypes checked against real arrays, from their metadata only."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")
pytest.importorskip("numpydantic")
pytest.importorskip("jsonschema")

from holdfast.arrays.check import check_arrays  # noqa: E402
from holdfast.arrays.inspect import npy_header  # noqa: E402
from holdfast.arrays.metadata import load_metadata  # noqa: E402


def write_dataset(root: Path, yaml_text: str) -> list[str]:
    (root / "holdfast.yaml").write_text(yaml_text)
    meta = load_metadata(root / "holdfast.yaml")
    return [str(p) for p in check_arrays(root, meta)]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    frames = zarr.create_array(
        tmp_path / "frames.zarr", shape=(40, 64, 64), chunks=(10, 64, 64), dtype="uint16"
    )
    frames[:] = 7
    group = zarr.open_group(tmp_path / "session.zarr", mode="w")
    sharded = group.create_array(
        "raw/frames", shape=(20, 32, 32), chunks=(1, 32, 32), shards=(10, 32, 32), dtype="float32"
    )
    sharded[:] = 1.5
    group.create_array("labels", shape=(20,), dtype=str)
    np.save(tmp_path / "masks.npy", np.zeros((3, 64, 64), dtype=bool))
    np.savez(tmp_path / "extra.npz", times=np.arange(40, dtype="int64"), ids=np.zeros(3, "u1"))
    (tmp_path / "trials.csv").write_text("trial,orientation\n1,45\n")
    return tmp_path


AGREEING = """\
title: T
files:
  - path: frames.zarr
    format: zarr
    shape: ["* time", 64, 64]
    dtype: uint16
  - path: session.zarr
    format: zarr
    arrays:
      - array_path: raw/frames
        shape: ["1-100 time", 32, 32]
        dtype: float
      - array_path: labels
        shape: ["*"]
        dtype: str
  - path: masks.npy
    format: npy
    shape: ["* roi", "..."]
    dtype: bool
  - path: extra.npz
    format: npz
    arrays:
      - {array_path: times, shape: [40], dtype: signed_integer}
      - {array_path: ids, dtype: unsigned_integer}
  - path: trials.csv
    format: csv
"""


def test_agreeing_metadata_has_no_problems(dataset: Path) -> None:
    assert write_dataset(dataset, AGREEING) == []


def test_wrong_shape_and_dtype_point_at_their_lines(dataset: Path) -> None:
    text = AGREEING.replace('shape: ["* time", 64, 64]', 'shape: ["* time", 64, 32]').replace(
        "    dtype: uint16", "    dtype: uint8"
    )
    assert write_dataset(dataset, text) == [
        "holdfast.yaml:6: files[0].dtype: declared uint8, but 'frames.zarr' is uint16",
        "holdfast.yaml:5: files[0].shape: declared [* time, 64, 32], but 'frames.zarr' "
        "has shape (40, 64, 64)",
    ]


def test_sharded_array_in_a_group(dataset: Path) -> None:
    text = AGREEING.replace('shape: ["1-100 time", 32, 32]', 'shape: ["1-10 time", 32, 32]')
    assert write_dataset(dataset, text) == [
        "holdfast.yaml:11: files[1].arrays[0].shape: declared [1-10 time, 32, 32], "
        "but 'session.zarr/raw/frames' has shape (20, 32, 32)"
    ]


def test_group_where_an_array_is_declared(dataset: Path) -> None:
    text = AGREEING.replace("array_path: raw/frames", "array_path: raw")
    problems = write_dataset(dataset, text)
    assert problems == [
        "holdfast.yaml:10: files[1].arrays[0].array_path: 'session.zarr/raw' is a group, "
        "not an array"
    ]
    text = AGREEING.replace("path: frames.zarr", "path: session.zarr").replace(
        "  - path: session.zarr\n    format: zarr\n    arrays:",
        "  - path: frames.zarr\n    format: zarr\n    arrays:",
    )
    problems = write_dataset(dataset, text)
    assert "'session.zarr' is a zarr group: describe its arrays under 'arrays'" in problems[0]


def test_missing_things(dataset: Path) -> None:
    text = (
        AGREEING.replace("array_path: labels", "array_path: nothing")
        .replace("array_path: ids", "array_path: idz")
        .replace("path: trials.csv", "path: trials2.csv")
    )
    assert write_dataset(dataset, text) == [
        "holdfast.yaml:13: files[1].arrays[1].array_path: no zarr array or group at "
        "'nothing' in 'session.zarr'",
        "holdfast.yaml:24: files[3].arrays[1].array_path: no array 'idz' in 'extra.npz' "
        "(it has: ids, times)",
        "holdfast.yaml:25: files[4].path: 'trials2.csv' does not exist",
    ]


def test_symlink_out_of_the_dataset_is_refused(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.npy"
    np.save(outside, np.zeros(3))
    (dataset / "link.npy").symlink_to(outside)
    problems = write_dataset(
        dataset, "title: T\nfiles:\n  - {path: link.npy, format: npy, shape: [3]}\n"
    )
    assert problems == [
        "holdfast.yaml:3: files[0].path: 'link.npy' leads outside the dataset folder"
    ]


def test_truncated_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((100, 100), dtype="float64"))
    with (tmp_path / "a.npy").open("r+b") as handle:
        handle.truncate(1000)
    problems = write_dataset(
        tmp_path, "title: T\nfiles:\n  - {path: a.npy, format: npy, shape: [100, 100]}\n"
    )
    assert len(problems) == 1
    assert "is truncated: its header promises 80128 bytes, the file has 1000" in problems[0]


def test_not_an_array_file(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"not numpy at all")
    (tmp_path / "b.zarr").write_text("a file, not a folder")
    problems = write_dataset(
        tmp_path,
        "title: T\nfiles:\n  - {path: a.npy, format: npy, shape: [1]}\n"
        "  - {path: b.zarr, format: zarr, dtype: uint8}\n",
    )
    assert problems[0].startswith("holdfast.yaml:3: files[0].path: not a readable .npy header")
    assert problems[1] == "holdfast.yaml:4: files[1].path: 'b.zarr' is not a folder (a zarr store)"


def test_unchecked_formats_are_a_warning(tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"\0" * 16)
    (tmp_path / "classic.nc").write_bytes(b"CDF\x01" + b"\0" * 60)
    problems = write_dataset(
        tmp_path,
        "title: T\nfiles:\n  - {path: v.mp4, format: mp4, shape: ['* frame', 480, 640, "
        "3], dtype: uint8}\n"
        "  - {path: classic.nc, format: netcdf, arrays: [{array_path: sst}]}\n",
    )
    assert problems == [
        "holdfast.yaml:3: warning: files[0]: shape and dtype of mp4 files are not "
        "checked against the data",
        "holdfast.yaml:4: warning: files[1].path: 'classic.nc' is netCDF-3 (classic) or not HDF5; "
        "its arrays cannot be checked",
    ]


def test_huge_zarr_with_corrupt_chunks_checks_from_metadata_only(tmp_path: Path) -> None:
    # 1e6 \u00d7 4096 \u00d7 4096 uint16 is 32 TiB; only its metadata and two chunks exist on disk,
    # and those chunks are garbage, so any read of array data fails.
    plain = zarr.create_array(
        tmp_path / "big.zarr", shape=(10**6, 4096, 4096), chunks=(1, 4096, 4096), dtype="uint16"
    )
    plain[0:2] = 1
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    sharded = group.create_array(
        "s", shape=(10**6, 1024, 1024), chunks=(1, 256, 256), shards=(4, 1024, 1024), dtype="int32"
    )
    sharded[0:4] = 2
    chunk_files = [p for p in tmp_path.rglob("*") if p.is_file() and "/c/" in p.as_posix()]
    assert len(chunk_files) == 3
    for chunk in chunk_files:
        chunk.write_bytes(os.urandom(64))
    with pytest.raises(Exception):  # noqa: B017 - whichever error zarr raises for garbage
        zarr.open_array(tmp_path / "big.zarr", mode="r")[0, 0, 0]
    with pytest.raises(Exception):  # noqa: B017
        zarr.open_array(tmp_path / "g.zarr", path="s", mode="r")[0, 0, 0]
    problems = write_dataset(
        tmp_path,
        "title: T\nfiles:\n"
        "  - {path: big.zarr, format: zarr, shape: ['* time', 4096, 4096], dtype: uint16}\n"
        "  - path: g.zarr\n    format: zarr\n"
        "    arrays: [{array_path: s, shape: ['* time', 1024, 1024], dtype: int32}]\n",
    )
    assert problems == []
    # and a mismatch is still found without reading data
    problems = write_dataset(
        tmp_path,
        "title: T\nfiles:\n  - {path: big.zarr, format: zarr, shape: ['* time', 4096, 4095]}\n",
    )
    assert len(problems) == 1
    assert "has shape (1000000, 4096, 4096)" in problems[0]


class CountingStream(io.BufferedReader):
    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_npy_header_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((1000, 1000), dtype="float64"))  # 8 MB of data
    with path.open("rb") as raw:
        stream = CountingStream(raw, buffer_size=64)  # type: ignore[arg-type]
        shape, dtype, offset = npy_header(stream)
    assert (shape, dtype, offset) == ((1000, 1000), np.dtype("float64"), 128)
    assert stream.bytes_read <= offset


def test_sparse_terabyte_npy_checks_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (2**18, 2**20)}
    )
    # the header as numpy writes it, then 1 TiB of data that is a hole in a sparse file
    with path.open("wb") as handle:
        handle.write(header.getvalue())
        handle.truncate(handle.tell() + 2**18 * 2**20 * 4)
    problems = write_dataset(
        tmp_path,
        "title: T\nfiles:\n  - {path: huge.npy, format: npy, shape: ['* t', 1048576], "
        "dtype: float32}\n",
    )
    assert problems == []


h5py = pytest.importorskip("h5py")


def test_hdf5_datasets(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "s.nwb", "w") as handle:
        handle.create_dataset("acquisition/ts/data", data=np.zeros((50, 8), dtype="float32"))
        handle.create_dataset("names", data=["a", "bb"], dtype=h5py.string_dtype())
    text = (
        "title: T\nfiles:\n  - path: s.nwb\n    format: nwb\n    arrays:\n"
        "      - {array_path: /acquisition/ts/data, shape: ['* time', 8], dtype: float32}\n"
        "      - {array_path: names, shape: [2], dtype: str}\n"
    )
    assert write_dataset(tmp_path, text) == []
    bad = text.replace("dtype: float32", "dtype: float64").replace(
        "/acquisition/ts/data", "/acquisition/ts"
    )
    assert write_dataset(tmp_path, bad) == [
        "holdfast.yaml:6: files[0].arrays[0].array_path: '/acquisition/ts' in s.nwb is a "
        "group, not a dataset"
    ]
    bad = text.replace("dtype: float32", "dtype: float64")
    assert write_dataset(tmp_path, bad) == [
        "holdfast.yaml:6: files[0].arrays[0].dtype: declared float64, but "
        "'s.nwb:/acquisition/ts/data' is float32"
    ]
    single = "title: T\nfiles:\n  - {path: s.nwb, format: hdf5, shape: [1]}\n"
    assert "holds datasets: describe them under 'arrays'" in write_dataset(tmp_path, single)[0]


def test_hdf5_external_links_are_not_followed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.h5"
    with h5py.File(outside, "w") as handle:
        handle.create_dataset("data", data=np.zeros(4))
    with h5py.File(tmp_path / "s.h5", "w") as handle:
        handle["linked"] = h5py.ExternalLink(str(outside), "/")
    text = (
        "title: T\nfiles:\n  - path: s.h5\n    format: hdf5\n"
        "    arrays: [{array_path: linked/data, shape: [4]}]\n"
    )
    problems = write_dataset(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(
        "holdfast.yaml:5: files[0].arrays[0].array_path: '/linked' in s.h5"
    )
    assert "external links are not followed" in problems[0]


def test_hdf5_with_corrupt_chunks_checks_from_metadata_only(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset(
            "x", data=np.ones((64, 256, 256), dtype="uint16"), chunks=(1, 256, 256), fletcher32=True
        )
        chunks = [data.id.get_chunk_info(i) for i in range(data.id.get_num_chunks())]
    with path.open("r+b") as raw:
        for chunk in chunks:
            raw.seek(chunk.byte_offset)
            raw.write(os.urandom(chunk.size))
    with h5py.File(path, "r") as handle, pytest.raises(OSError):
        handle["x"][0]
    text = (
        "title: T\nfiles:\n  - {path: d.h5, format: hdf5, arrays: [{array_path: x, "
        "shape: ['* t', 256, 256], dtype: uint16}]}\n"
    )
    assert write_dataset(tmp_path, text) == []
