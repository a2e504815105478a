"""A remote array as a reference, not as its data.

numpydantic validates a zarr array over a TorrentStore like any zarr array, from its
metadata. But its JSON dump of a zarr array that is not in a local folder is the whole
array as nested lists: for a remote array that means downloading all of it. A model
field typed `RemoteNDArray[...]` dumps an :class:`ArrayReference` instead (infohash,
path, where the torrent came from, and the array's zarr metadata), and
`ArrayReference.open()` opens it again.

    class Recording(BaseModel):
        frames: RemoteNDArray[Shape[int, L[512], L[512]], np.uint16]

    Recording(frames=open_zarr(url, "ds/frames.zarr")).model_dump_json()   # no chunk read
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, SerializationInfo, WrapSerializer

from holdfast.arrays.errors import SourceError


class ArrayReference(BaseModel):
    """Where a remote array lives and what it is."""

    model_config = ConfigDict(frozen=True)

    type: str = "holdfast-torrent-array"
    infohash: str
    path: str  # of the array inside the torrent
    source: str | None = None  # the .torrent, upload URL or path it was opened from
    metadata: dict[str, Any]  # the array's zarr metadata (zarr.json document)

    @classmethod
    def of(cls, array: Any) -> ArrayReference:
        """The reference of a zarr array opened over a TorrentStore."""
        from holdfast.arrays.store import TorrentStore

        store = array.store
        if not isinstance(store, TorrentStore):
            raise TypeError("only arrays read from a torrent have a torrent reference")
        path = "/".join(p for p in (store.root, array.path) if p)
        return cls(
            infohash=store.reader.torrent.infohash,
            path=path,
            source=store.reader.origin,
            metadata=array.metadata.to_dict(),
        )

    def open(self, **reader_options: Any) -> Any:
        """Open the array again from its source; the torrent must be the same."""
        from holdfast.arrays.sources import open_zarr

        if self.source is None:
            raise SourceError("this reference does not say where its torrent came from")
        array = open_zarr(self.source, self.path, **reader_options)
        opened = array.store.reader.torrent.infohash
        if opened != self.infohash:
            raise SourceError(f"{self.source} now holds torrent {opened}, not {self.infohash}")
        return array


def _serialize(value: Any, handler: Any, info: SerializationInfo) -> Any:
    from holdfast.arrays.store import TorrentStore

    store = getattr(value, "store", None)
    if isinstance(store, TorrentStore):
        return ArrayReference.of(value).model_dump(mode="json")
    return handler(value)


def _remote(annotation: Any) -> Any:
    return Annotated[annotation, WrapSerializer(_serialize, when_used="always")]


class RemoteNDArray:
    """`RemoteNDArray[shape, dtype]`: numpydantic's NDArray whose torrent-backed values
    serialise as references."""

    def __class_getitem__(cls, item: Any) -> Any:
        from numpydantic import NDArray

        return _remote(NDArray[item])
