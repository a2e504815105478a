"""Arrays and metadata: holdfast.yaml, checks of declared arrays, and streaming reads.

    from holdfast.arrays import open_zarr
    frames = open_zarr("https://instance.example/uploads/<infohash>", "dataset/frames.zarr")
    frames[0:10]        # fetches only the pieces holding those chunks

Sources are .torrent files, their URLs, instance upload URLs (whose zarr metadata the
instance serves, so opening reads nothing from the swarm) and magnet links; pieces come
from BitTorrent peers through libtorrent (holdfast.arrays.peers) with web seeds as
fallback, or from web seeds alone.

Publishing a dataset folder (stable API for `holdfast publish`):

    from holdfast.arrays.publish import prepare_publication
    publication = prepare_publication(folder)   # MetadataError lists every problem
    publication.title / .description / .creators / .keywords / .license / .files
    publication.display        # JSON-ready fields for the dataset and upload pages
    publication.search_text    # plain text to index
    publication.metadata_files # POST {"files": ...} to /api/v1/uploads/<infohash>/zarr-metadata

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
