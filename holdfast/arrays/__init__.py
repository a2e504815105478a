"""Arrays and metadata: holdfast.yaml, checks of declared arrays, and streaming reads.

    from holdfast.arrays import open_zarr
    frames = open_zarr("https://instance.example/uploads/<infohash>", "dataset/frames.zarr")
    frames[0:10]        # fetches only the pieces holding those chunks

Importing this package imports nothing heavy; the parts that need the optional
`holdfast[arrays]` extra (numpy, zarr, numpydantic, fsspec, jsonschema) import it when
used and raise MissingExtraError with an install hint when it is absent.
"""

from __future__ import annotations

from typing import Any

from holdfast.arrays.errors import ArraysError, MetadataError, MissingExtraError, Problem

__all__ = ["ArraysError", "MetadataError", "MissingExtraError", "Problem", "open_zarr"]


def open_zarr(source: Any, path: str | None = None, **reader_options: Any) -> Any:
    """The zarr group or array at `path` in a .torrent, its URL or an upload URL.

    See holdfast.arrays.sources.open_zarr.
    """
    try:
        from holdfast.arrays.sources import open_zarr as _open_zarr
    except ImportError as exc:
        raise MissingExtraError(exc.name or "zarr") from exc
    return _open_zarr(source, path, **reader_options)
