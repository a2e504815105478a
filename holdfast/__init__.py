"""holdfast: a federated, peer-to-peer archive for research data."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("holdfast")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "open_zarr"]


def open_zarr(source: Any, path: str | None = None, **reader_options: Any) -> Any:
    """Open a remote zarr array or group from an upload URL or .torrent (needs holdfast[arrays])."""
    from holdfast.arrays import open_zarr as _open_zarr

    return _open_zarr(source, path, **reader_options)
