"""The files of a torrent as a read-only fsspec filesystem.

    fs = TorrentFileSystem(reader)
    fs.ls("dataset")
    fs.cat_file("dataset/frames.zarr/zarr.json")
    with fs.open("dataset/session.nwb") as f:      # h5py.File(f) reads it lazily
        ...

Every read goes through the reader, so only the pieces holding the bytes asked for are
fetched, verified and cached. zarr can also use it through its FsspecStore, and
`xarray.open_zarr(TorrentStore(...))` works directly on the zarr store.
"""

from __future__ import annotations

from typing import Any

from fsspec.asyn import AsyncFileSystem
from fsspec.spec import AbstractBufferedFile

from holdfast.arrays.source import TorrentReader


class TorrentFileSystem(AsyncFileSystem):
    """Paths are the torrent's own ("name/dir/file"); nothing can be written."""

    protocol = ("holdfast",)
    root_marker = ""
    # Each instance wraps its own reader; fsspec's instance cache would hand one
    # filesystem to two callers that built different readers.
    cachable = False

    def __init__(self, reader: TorrentReader, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reader = reader

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        return await self.reader.read_async(self._strip_protocol(path), start or 0, end)

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.reader.info(self._strip_protocol(path)).as_dict()

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        entries = self.reader.ls(self._strip_protocol(path))
        if detail:
            return [e.as_dict() for e in entries]
        return [e.name for e in entries]

    async def _get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        path = self._strip_protocol(rpath)
        size = self.reader.size(path)
        step = max(self.reader.pieces.piece_length, 1 << 20)
        with open(lpath, "wb") as out:
            for start in range(0, size, step):
                out.write(await self.reader.read_async(path, start, min(start + step, size)))

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TorrentBufferedFile:
        if mode != "rb":
            raise PermissionError("the files of a torrent are read-only")
        path = self._strip_protocol(path)
        return TorrentBufferedFile(
            self,
            path,
            mode=mode,
            block_size=block_size or self.reader.pieces.piece_length,
            # pieces are cached by the reader; a second cache here would double memory
            cache_type=kwargs.pop("cache_type", "none"),
            cache_options=cache_options,
            size=self.reader.size(path),
        )

    def ukey(self, path: str) -> str:
        return f"{self.reader.torrent.infohash}/{self._strip_protocol(path)}"


class TorrentBufferedFile(AbstractBufferedFile):
    """A file of the torrent opened for reading; reads become piece reads."""

    fs: TorrentFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.reader.read(self.path, start, end)
