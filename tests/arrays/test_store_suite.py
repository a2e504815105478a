"""zarr's own store test-suite (zarr.testing.store.StoreTests), read-only parts, run
against TorrentStore over a real torrent and a real web seed.

The suite's `set` helper writes "behind the store's back"; for a torrent that means
adding the file to the served folder, making a new torrent and pointing the store at a
reader of it. Tests that write through the store are replaced by checks that it refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("zarr")

from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.buffer.cpu import Buffer as CpuBuffer
from zarr.testing.store import StoreTests

from holdfast.arrays.source import TorrentReader
from holdfast.arrays.store import TorrentStore
from holdfast.arrays.webseed import WebseedFetcher
from holdfast.torrents import create_torrent
from tests.arrays.rangeserver import RangeServer

# anyio's pytest plugin (anyio is a dependency of httpx) runs the suite's coroutines
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


ROOT_IN_TORRENT = "store"


class Served:
    """A folder served by a Range web seed, and readers of torrents made from it."""

    def __init__(self, folder: Path, server: RangeServer) -> None:
        self.folder = folder
        self.server = server
        self.readers: list[TorrentReader] = []
        # a torrent needs at least one byte; this file sits outside the store's root
        (folder / "src" / "keep").parent.mkdir(parents=True, exist_ok=True)
        (folder / "src" / "keep").write_bytes(b"k")

    def reader(self) -> TorrentReader:
        torrent = create_torrent(
            self.folder / "src", version="hybrid", webseeds=[self.server.url + "/"]
        ).torrent
        reader = TorrentReader(torrent, WebseedFetcher(torrent, [self.server.url]))
        self.readers.append(reader)
        return reader


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServer]:
    with RangeServer(tmp_path_factory.mktemp("suite")) as running:
        yield running


class TestTorrentStore(StoreTests[TorrentStore, CpuBuffer]):
    store_cls = TorrentStore
    buffer_cls = CpuBuffer

    @pytest.fixture
    def served(self, server: RangeServer, tmp_path: Path) -> Iterator[Served]:
        folder = server.root / tmp_path.name
        folder.mkdir()
        served = Served(folder, server)
        # the web seed URL names the folder; BEP 19 appends the torrent's name ("src")
        served.server = _Prefixed(server, tmp_path.name)  # type: ignore[assignment]
        yield served
        for reader in served.readers:
            reader.close()

    @pytest.fixture
    def store_kwargs(self, served: Served) -> dict[str, Any]:
        self._served = served
        return {"reader": served.reader(), "root": f"src/{ROOT_IN_TORRENT}"}

    # Synchronous fixtures: opening a TorrentStore binds nothing to an event loop, and
    # the suite's sync tests use them too.
    @pytest.fixture
    def store(self, open_kwargs: dict[str, Any]) -> TorrentStore:
        return asyncio.run(self.store_cls.open(**open_kwargs))

    @pytest.fixture
    def store_not_open(self, store_kwargs: dict[str, Any]) -> TorrentStore:
        return self.store_cls(**store_kwargs)

    async def set(self, store: TorrentStore, key: str, value: Buffer) -> None:
        target = self._served.folder / "src" / ROOT_IN_TORRENT / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(value.to_bytes())
        store.reader = self._served.reader()

    async def get(self, store: TorrentStore, key: str) -> Buffer:
        target = self._served.folder / "src" / ROOT_IN_TORRENT / key
        return self.buffer_cls.from_bytes(target.read_bytes())

    def test_store_repr(self, store: TorrentStore) -> None:
        assert repr(store).startswith("TorrentStore(")
        assert str(store).endswith("/src/store")

    def test_store_supports_writes(self, store: TorrentStore) -> None:
        assert not store.supports_writes

    def test_store_supports_listing(self, store: TorrentStore) -> None:
        assert store.supports_listing

    def test_store_read_only(self, store: TorrentStore) -> None:
        assert store.read_only
        with pytest.raises(AttributeError):
            store.read_only = False  # type: ignore[misc]

    @pytest.mark.parametrize("read_only", [True, False])
    async def test_store_open_read_only(self, open_kwargs: dict[str, Any], read_only: bool) -> None:
        if not read_only:
            with pytest.raises(ValueError, match="read-only"):
                await self.store_cls.open(**{**open_kwargs, "read_only": False})
            return
        store = await self.store_cls.open(**{**open_kwargs, "read_only": True})
        assert store._is_open
        assert store.read_only

    # The suite fills the store through store.set / store._set_many in these; here they
    # are filled through the `set` helper instead, then checked exactly as the suite does.

    async def _fill(self, store: TorrentStore, items: dict[str, bytes]) -> None:
        for key, value in items.items():
            target = self._served.folder / "src" / ROOT_IN_TORRENT / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(value)
        store.reader = self._served.reader()

    async def test_exists(self, store: TorrentStore) -> None:
        assert not await store.exists("foo")
        await self._fill(store, {"foo/zarr.json": b"bar"})
        assert await store.exists("foo/zarr.json")
        assert not await store.exists("foo")

    async def test_getsize_prefix(self, store: TorrentStore) -> None:
        await self._fill(
            store, {k: b"\x01\x02\x03\x04" for k in ["c/0/0", "c/0/1", "c/1/0", "c/1/1"]}
        )
        assert await store.getsize_prefix("c") == 16

    async def test_list(self, store: TorrentStore) -> None:
        assert [k async for k in store.list()] == []
        items = {"foo/zarr.json": b"", **{f"foo/c/{i}": b"" for i in range(10)}}
        await self._fill(store, items)
        assert sorted([k async for k in store.list()]) == sorted(items)

    async def test_list_prefix(self, store: TorrentStore) -> None:
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        items = {p + "zarr.json": b"" for p in prefixes}
        await self._fill(store, items)
        for prefix in prefixes:
            observed = sorted([k async for k in store.list_prefix(prefix)])
            assert observed == sorted(k for k in items if k.startswith(prefix))

    async def test_list_empty_path(self, store: TorrentStore) -> None:
        items = {"foo/bar/zarr.json": b"", "foo/bar/c/1": b"", "foo/baz/c/0": b""}
        await self._fill(store, items)
        assert sorted([k async for k in store.list()]) == sorted(items)
        assert sorted([k async for k in store.list_prefix("")]) == sorted(items)
        assert sorted([k async for k in store.list_prefix("foo/bar/")]) == sorted(
            k for k in items if k.startswith("foo/bar/")
        )

    async def test_list_dir(self, store: TorrentStore) -> None:
        assert [k async for k in store.list_dir("")] == []
        assert [k async for k in store.list_dir("foo")] == []
        await self._fill(store, {"foo/zarr.json": b"bar", "foo/c/1": b"\x01"})
        assert sorted([k async for k in store.list_dir("foo")]) == ["c", "zarr.json"]
        assert sorted([k async for k in store.list_dir("foo/")]) == ["c", "zarr.json"]
        await self._fill(
            store,
            {"foo/bar/foobar_first_child": b"1", "foo/bar/foobar_second_child/zarr.json": b"2"},
        )
        assert sorted([k async for k in store.list_dir("foo/bar")]) == [
            "foobar_first_child",
            "foobar_second_child",
        ]

    # Writes are refused, with zarr's own message.

    async def test_set(self, store: TorrentStore) -> None:  # type: ignore[override]
        with pytest.raises(ValueError, match="read-only mode"):
            await store.set("zarr.json", CpuBuffer.from_bytes(b"x"))

    async def test_set_many(self, store: TorrentStore) -> None:
        with pytest.raises(ValueError, match="read-only mode"):
            await store._set_many([("a", CpuBuffer.from_bytes(b"x"))])

    async def test_set_not_open(self, store_not_open: TorrentStore) -> None:
        with pytest.raises(ValueError, match="read-only mode"):
            await store_not_open.set("a", CpuBuffer.from_bytes(b"x"))

    async def test_set_if_not_exists(self, store: TorrentStore) -> None:
        with pytest.raises(ValueError, match="read-only mode"):
            await store.set_if_not_exists("k", CpuBuffer.from_bytes(b"x"))

    async def test_serializable_store(self, store: TorrentStore) -> None:
        import pickle

        with pytest.raises(TypeError, match="ArrayReference"):
            pickle.dumps(store)

    async def test_clear(self, store: TorrentStore) -> None:
        with pytest.raises(NotImplementedError):
            await store.clear()

    async def test_delete_dir(self, store: TorrentStore) -> None:
        with pytest.raises(NotImplementedError):
            await store.delete_dir("foo")

    def test_get_sync_reads_through_pieces(self, store: TorrentStore) -> None:
        assert store.get_sync("missing", prototype=default_buffer_prototype()) is None


class _Prefixed:
    """The module's server, with a URL pointing at one test's folder."""

    def __init__(self, server: RangeServer, folder: str) -> None:
        self._server = server
        self.url = server.url + folder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
