"""A read-only zarr v3 store over the files of a torrent.

    reader = TorrentReader(torrent, WebseedFetcher(torrent))
    store = TorrentStore(reader, "dataset/frames.zarr")
    array = zarr.open_array(store, mode="r")
    array[0:10]      # fetches only the pieces holding those chunks (or shard ranges)

Keys are paths under `root` in the torrent. A read of a key, or of a byte range of it
(zarr asks for ranges of a shard), becomes a read of the pieces covering it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from holdfast.arrays.errors import FileNotInTorrent
from holdfast.arrays.source import TorrentReader


class TorrentStore(Store):
    """The files under `root` in a torrent, as a read-only zarr store."""

    supports_writes = False
    supports_deletes = False
    supports_listing = True

    def __init__(self, reader: TorrentReader, root: str = "", *, read_only: bool = True) -> None:
        if not read_only:
            raise ValueError("a torrent store is read-only: its content is fixed by its infohash")
        super().__init__(read_only=True)
        self.reader = reader
        self.root = root.strip("/")

    # -- identity ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TorrentStore)
            and other.reader.torrent.infohash == self.reader.torrent.infohash
            and other.root == self.root
        )

    def __hash__(self) -> int:
        return hash((self.reader.torrent.infohash, self.root))

    def __repr__(self) -> str:
        return f"TorrentStore({self.reader.torrent.infohash[:16]}…, {self.root!r})"

    def __str__(self) -> str:
        return f"torrent://{self.reader.torrent.infohash}/{self.root}"

    def with_read_only(self, read_only: bool = False) -> Store:
        if not read_only:
            return super().with_read_only(read_only)  # raises NotImplementedError
        return TorrentStore(self.reader, self.root)

    def close(self) -> None:
        # the reader may serve other stores; its owner closes it
        super().close()

    # -- reading -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _bounds(self, path: str, byte_range: ByteRequest | None) -> tuple[int, int | None]:
        if byte_range is None:
            return 0, None
        if isinstance(byte_range, RangeByteRequest):
            return byte_range.start, byte_range.end
        if isinstance(byte_range, OffsetByteRequest):
            return byte_range.offset, None
        if isinstance(byte_range, SuffixByteRequest):
            size = self.reader.size(path)
            return max(size - byte_range.suffix, 0), None
        raise TypeError(f"Unexpected byte_range, got {byte_range}.")

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        await self._ensure_open()
        path = self._path(key)
        try:
            start, end = self._bounds(path, byte_range)
            data = await self.reader.read_async(path, start, end)
        except FileNotInTorrent:
            return None
        return prototype.buffer.from_bytes(data)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        from zarr.core.buffer import default_buffer_prototype

        prototype = prototype or default_buffer_prototype()
        path = self._path(key)
        try:
            start, end = self._bounds(path, byte_range)
            data = self.reader.read(path, start, end)
        except FileNotInTorrent:
            return None
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        import asyncio

        return list(
            await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges))
        )

    async def exists(self, key: str) -> bool:
        try:
            return self.reader.info(self._path(key)).type == "file"
        except FileNotInTorrent:
            return False

    async def getsize(self, key: str) -> int:
        try:
            info = self.reader.info(self._path(key))
        except FileNotInTorrent:
            raise FileNotFoundError(key) from None
        if info.type != "file":
            raise FileNotFoundError(key)
        return info.size

    # -- listing -------------------------------------------------------------------------

    def _keys(self) -> list[str]:
        base = f"{self.root}/" if self.root else ""
        if self.root and self.reader.pieces.index.get(self.root) is not None:
            return []  # the root is a file, not a folder of keys
        return [p[len(base) :] for p in self.reader.walk_files(self.root) if p.startswith(base)]

    async def list(self) -> AsyncIterator[str]:
        for key in self._keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        path = self._path(prefix.strip("/")).strip("/")
        try:
            entries = self.reader.ls(path)
        except FileNotInTorrent:
            return
        if len(entries) == 1 and entries[0].name == path and entries[0].type == "file":
            return
        for entry in entries:
            yield entry.name.rsplit("/", 1)[-1]

    # -- writing (refused) ---------------------------------------------------------------

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "a TorrentStore holds open connections; pickle an ArrayReference "
            "(holdfast.arrays.reference) and reopen it instead"
        )
