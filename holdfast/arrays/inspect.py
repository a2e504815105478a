"""Read what arrays are, from their metadata only: shapes, dtypes, chunks.

Nothing here reads an array element. zarr arrays are opened through zarr, which reads
their `zarr.json` (or `.zarray`) and no chunk until indexed; `.npy` files are described
by their header; HDF5 datasets by h5py's object headers. The functions take open
objects where they can, so the same code describes a local folder and a remote store.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from holdfast.arrays.errors import MissingExtraError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_MAX_HEADER = 100_000


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingExtraError("numpy") from exc
    return numpy


def _zarr() -> Any:
    try:
        import zarr
    except ImportError as exc:
        raise MissingExtraError("zarr") from exc
    return zarr


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """The metadata of one array. `path` is inside its container ("" for the root)."""

    path: str
    shape: tuple[int, ...]
    dtype: Any  # numpy.dtype
    chunks: tuple[int, ...] | None = None  # the unit of reading (inner chunk if sharded)
    shards: tuple[int, ...] | None = None  # the unit of storage, when sharded
    fill_value: Any = None
    zarr_format: int | None = None

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * int(self.dtype.itemsize)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    path: str
    attributes: dict[str, Any]


class ArrayMetadataError(Exception):
    """The array's metadata cannot be read; the message says why."""


# --- zarr --------------------------------------------------------------------------------


def zarr_array_info(array: Any, path: str | None = None) -> ArrayInfo:
    """Describe an open zarr.Array from its metadata."""
    shards = getattr(array, "shards", None)
    return ArrayInfo(
        path=array.path if path is None else path,
        shape=tuple(int(s) for s in array.shape),
        dtype=array.dtype,
        chunks=tuple(int(c) for c in array.chunks),
        shards=tuple(int(s) for s in shards) if shards else None,
        fill_value=array.fill_value,
        zarr_format=int(array.metadata.zarr_format),
    )


def walk_zarr(node: Any) -> Iterator[ArrayInfo | GroupInfo]:
    """The node and everything under it, parents first, sorted by path."""
    zarr = _zarr()
    if isinstance(node, zarr.Array):
        yield zarr_array_info(node)
        return
    yield GroupInfo(node.path, dict(node.attrs))
    members = sorted(node.members(max_depth=None), key=lambda item: item[0])
    base = f"{node.path}/" if node.path else ""
    for name, member in members:
        if isinstance(member, zarr.Array):
            yield zarr_array_info(member, base + name)
        else:
            yield GroupInfo(base + name, dict(member.attrs))


def open_local_zarr(path: Path, inner: str | None = None) -> Any:
    """Open a zarr store on disk read-only, or the node at `inner` inside it."""
    zarr = _zarr()
    from zarr.storage import LocalStore

    store = LocalStore(path, read_only=True)
    where = f"{inner!r} in {path.name!r}" if inner else repr(path.name)
    try:
        return zarr.open(store=store, mode="r", path=inner or "")
    except FileNotFoundError:
        raise ArrayMetadataError(f"no zarr array or group at {where}") from None
    except Exception as exc:  # zarr raises many types for malformed metadata
        raise ArrayMetadataError(f"unreadable zarr metadata at {where}: {exc}") from exc


# --- npy / npz -----------------------------------------------------------------------------


def npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], Any, int]:
    """(shape, dtype, offset of the data) from an .npy header; reads the header only."""
    np = _numpy()
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, _fortran, dtype = fmt.read_array_header_1_0(
                stream, max_header_size=NPY_MAX_HEADER
            )
        elif version == (2, 0):
            shape, _fortran, dtype = fmt.read_array_header_2_0(
                stream, max_header_size=NPY_MAX_HEADER
            )
        elif version == (3, 0) and hasattr(fmt, "_read_array_header"):
            # 3.0 is 2.0 with a UTF-8 header; numpy has no public reader for it
            shape, _fortran, dtype = fmt._read_array_header(
                stream, version, max_header_size=NPY_MAX_HEADER
            )
        else:
            raise ArrayMetadataError(f"unsupported .npy version {version}")
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise ArrayMetadataError(f"not a readable .npy header: {exc}") from exc
    return tuple(int(s) for s in shape), dtype, stream.tell()


def npy_info(path: Path) -> tuple[ArrayInfo, int]:
    """The array in an .npy file and how many data bytes its header promises."""
    with path.open("rb") as stream:
        shape, dtype, offset = npy_header(stream)
    info = ArrayInfo("", shape, dtype)
    return info, offset + (0 if dtype.hasobject else info.nbytes)


def npz_infos(path: Path) -> Iterator[ArrayInfo]:
    """The arrays in an .npz file, from each member's header (the rest is never inflated)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as stream:
                    shape, dtype, _ = npy_header(stream)
                yield ArrayInfo(member.filename[: -len(".npy")], shape, dtype)
    except zipfile.BadZipFile as exc:
        raise ArrayMetadataError(f"not a readable .npz file: {exc}") from exc


# --- HDF5 ------------------------------------------------------------------------------------


def is_hdf5(path: Path) -> bool:
    """True for an HDF5 file (signature at 0, or after a user block at 512·2^n)."""
    with path.open("rb") as stream:
        offset = 0
        size = path.stat().st_size
        while offset + 8 <= size:
            stream.seek(offset)
            if stream.read(8) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def hdf5_dataset_info(dataset: Any, path: str) -> ArrayInfo:
    """Describe an open h5py.Dataset without reading it."""
    np = _numpy()
    import h5py

    dtype = dataset.dtype
    if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
        # variable-length strings: stand for them with numpy's own string dtype
        dtype = np.dtypes.StringDType()
    return ArrayInfo(
        path=path,
        shape=tuple(int(s) for s in dataset.shape) if dataset.shape is not None else (),
        dtype=dtype,
        chunks=tuple(int(c) for c in dataset.chunks) if dataset.chunks else None,
        fill_value=dataset.fillvalue,
    )


def hdf5_info(path: Path, inner: str) -> ArrayInfo:
    """The dataset at `inner` in the HDF5 file at `path`."""
    try:
        import h5py
    except ImportError as exc:
        raise MissingExtraError("h5py") from exc
    try:
        with h5py.File(path, "r") as handle:
            _refuse_external_links(handle, inner, path.name)
            node = handle.get(inner)
            if node is None:
                raise ArrayMetadataError(f"no dataset {inner!r} in {path.name}")
            if not isinstance(node, h5py.Dataset):
                raise ArrayMetadataError(f"{inner!r} in {path.name} is a group, not a dataset")
            return hdf5_dataset_info(node, inner)
    except OSError as exc:
        raise ArrayMetadataError(f"not a readable HDF5 file: {exc}") from exc


def _refuse_external_links(handle: Any, inner: str, name: str) -> None:
    """Follow no external link: it would open another file, possibly outside the dataset."""
    import h5py

    parts = [p for p in inner.split("/") if p]
    for depth in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:depth])
        link = handle.get(prefix, getlink=True)
        if link is None:
            return
        if isinstance(link, h5py.ExternalLink):
            raise ArrayMetadataError(
                f"{prefix!r} in {name} is a link to another file ({link.filename}); "
                "external links are not followed"
            )
