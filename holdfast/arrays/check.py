"""Check the arrays a holdfast.yaml declares against the arrays on disk.

For each described file: it exists inside the dataset folder, and each declared shape and
dtype holds for the real array. The real array is known from its metadata only (see
holdfast.arrays.inspect), so checking a terabyte of zarr chunks costs a few small reads.
numpydantic judges each array: it validates a stand-in with the array's exact shape and
dtype whose elements all alias one zero (`numpy.broadcast_to`), which occupies no memory
and can never cause a read from the array itself, whatever the format's interface does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from holdfast.arrays.errors import MissingExtraError, Problem
from holdfast.arrays.inspect import (
    ArrayInfo,
    ArrayMetadataError,
    hdf5_info,
    is_hdf5,
    npy_info,
    npz_infos,
    open_local_zarr,
    zarr_array_info,
)
from holdfast.arrays.metadata import ArraySpec, DataFile, DatasetMetadata
from holdfast.arrays.shapes import to_numpydantic

_HDF5_FORMATS = frozenset({"hdf5", "nwb", "netcdf"})
_CHECKED_FORMATS = frozenset({"zarr", "npy", "npz", *_HDF5_FORMATS})


def check_arrays(root: Path, metadata: DatasetMetadata) -> list[Problem]:
    """Every problem between the metadata and the files under `root`; [] when they agree."""
    problems: list[Problem] = []
    base = root.resolve()
    for data_file in metadata.files:
        problems.extend(_check_file(base, metadata, data_file))
    return problems


def _check_file(base: Path, meta: DatasetMetadata, data_file: DataFile) -> list[Problem]:
    at = data_file.field_path
    target = base / data_file.path
    # the schema keeps '..' out; this keeps symlinks from pointing outside the dataset
    if not target.resolve().is_relative_to(base):
        return [meta.problem((*at, "path"), f"{data_file.path!r} leads outside the dataset folder")]
    if not os.path.lexists(target):
        return [meta.problem((*at, "path"), f"{data_file.path!r} does not exist")]
    declares = data_file.spec.declares_array or bool(data_file.arrays)
    if not declares:
        return []
    fmt = data_file.format
    if fmt == "nwb" and target.is_dir():
        fmt = "zarr"  # NWB stored as zarr
    if fmt not in _CHECKED_FORMATS:
        return [
            meta.problem(
                at,
                f"shape and dtype of {fmt} files are not checked against the data",
                severity="warning",
            )
        ]
    try:
        if fmt == "zarr":
            return _check_zarr(target, meta, data_file)
        if fmt == "npy":
            return _check_npy(target, meta, data_file)
        if fmt == "npz":
            return _check_container(
                meta, data_file, {info.path: info for info in npz_infos(target)}
            )
        return _check_hdf5(target, meta, data_file)
    except ArrayMetadataError as exc:
        return [meta.problem((*at, "path"), str(exc))]
    except MissingExtraError as exc:
        return [meta.problem(at, f"not checked: {exc}", severity="warning")]


def _check_zarr(target: Path, meta: DatasetMetadata, data_file: DataFile) -> list[Problem]:
    import zarr

    at = data_file.field_path
    if not target.is_dir():
        return [meta.problem((*at, "path"), f"{data_file.path!r} is not a folder (a zarr store)")]
    problems: list[Problem] = []
    if data_file.spec.declares_array:
        node = open_local_zarr(target)
        if not isinstance(node, zarr.Array):
            return [
                meta.problem(
                    at,
                    f"{data_file.path!r} is a zarr group: describe its arrays under 'arrays'",
                )
            ]
        problems.extend(_compare(meta, at, data_file.spec, zarr_array_info(node), data_file.path))
    for entry in data_file.arrays:
        label = f"{data_file.path}/{entry.array_path.strip('/')}"
        try:
            node = open_local_zarr(target, entry.array_path.strip("/"))
        except ArrayMetadataError as exc:
            problems.append(meta.problem((*entry.field_path, "array_path"), str(exc)))
            continue
        if not isinstance(node, zarr.Array):
            problems.append(
                meta.problem(
                    (*entry.field_path, "array_path"), f"{label!r} is a group, not an array"
                )
            )
            continue
        problems.extend(_compare(meta, entry.field_path, entry.spec, zarr_array_info(node), label))
    return problems


def _check_npy(target: Path, meta: DatasetMetadata, data_file: DataFile) -> list[Problem]:
    at = data_file.field_path
    if data_file.arrays:
        return [meta.problem((*at, "arrays"), "an .npy file holds one array: use shape and dtype")]
    info, expected_size = npy_info(target)
    problems = _compare(meta, at, data_file.spec, info, data_file.path)
    actual_size = target.stat().st_size
    if not info.dtype.hasobject and actual_size < expected_size:
        problems.append(
            meta.problem(
                (*at, "path"),
                f"{data_file.path!r} is truncated: its header promises {expected_size} bytes, "
                f"the file has {actual_size}",
            )
        )
    return problems


def _check_hdf5(target: Path, meta: DatasetMetadata, data_file: DataFile) -> list[Problem]:
    at = data_file.field_path
    if not target.is_file() or not is_hdf5(target):
        kind = "netCDF-3 (classic) or not HDF5" if data_file.format == "netcdf" else "not HDF5"
        severity = "warning" if data_file.format == "netcdf" else "error"
        return [
            meta.problem(
                (*at, "path"),
                f"{data_file.path!r} is {kind}; its arrays cannot be checked",
                severity=severity,
            )
        ]
    problems: list[Problem] = []
    if data_file.spec.declares_array:
        problems.append(
            meta.problem(at, f"{data_file.path!r} holds datasets: describe them under 'arrays'")
        )
    for entry in data_file.arrays:
        label = f"{data_file.path}:{entry.array_path}"
        try:
            info = hdf5_info(target, entry.array_path)
        except ArrayMetadataError as exc:
            problems.append(meta.problem((*entry.field_path, "array_path"), str(exc)))
            continue
        problems.extend(_compare(meta, entry.field_path, entry.spec, info, label))
    return problems


def _check_container(
    meta: DatasetMetadata, data_file: DataFile, members: dict[str, ArrayInfo]
) -> list[Problem]:
    at = data_file.field_path
    problems: list[Problem] = []
    if data_file.spec.declares_array:
        problems.append(
            meta.problem(at, f"{data_file.path!r} holds arrays: describe them under 'arrays'")
        )
    for entry in data_file.arrays:
        info = members.get(entry.array_path.strip("/"))
        if info is None:
            known = ", ".join(sorted(members)) or "none"
            problems.append(
                meta.problem(
                    (*entry.field_path, "array_path"),
                    f"no array {entry.array_path!r} in {data_file.path!r} (it has: {known})",
                )
            )
            continue
        label = f"{data_file.path}:{entry.array_path}"
        problems.extend(_compare(meta, entry.field_path, entry.spec, info, label))
    return problems


def _compare(
    meta: DatasetMetadata, at: tuple[Any, ...], spec: ArraySpec, info: ArrayInfo, label: str
) -> list[Problem]:
    """Judge one array against its declared spec with numpydantic."""
    import numpy as np
    from numpydantic.exceptions import DtypeError, ShapeError
    from numpydantic.interface import NumpyInterface

    problems: list[Problem] = []
    shape_expr, dtype_target = to_numpydantic(spec.shape or (), spec.dtype)
    stand_in = np.broadcast_to(np.zeros((), dtype=info.dtype), info.shape)
    if spec.dtype is not None:
        if info.dtype.kind == "O":
            # an object array's element type is only known by reading an element
            if spec.dtype != "object":
                problems.append(
                    meta.problem(
                        (*at, "dtype"),
                        f"declared {spec.dtype}, but {label!r} holds Python objects",
                    )
                )
        else:
            try:
                NumpyInterface(dtype=dtype_target).validate(stand_in)
            except DtypeError:
                problems.append(
                    meta.problem(
                        (*at, "dtype"), f"declared {spec.dtype}, but {label!r} is {info.dtype}"
                    )
                )
    if spec.shape is not None:
        try:
            NumpyInterface(shape=shape_expr).validate(stand_in)
        except ShapeError:
            problems.append(
                meta.problem(
                    (*at, "shape"),
                    f"declared [{', '.join(str(d) for d in spec.shape)}], but {label!r} has shape "
                    f"{tuple(info.shape)}",
                )
            )
    return problems
