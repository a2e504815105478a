"""A dataset with zarr arrays (one sharded, one not) and an HDF5 file, its torrents, and a
Range-capable web seed serving it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.arrays.rangeserver import RangeServer

SHAPE = (64, 128, 128)


@dataclass
class Dataset:
    root: Path  # the folder the web seed serves; the dataset is root / "ds"
    data: Any  # the numpy array stored in both zarr arrays
    server: RangeServer
    torrents: dict[str, Any]  # version -> parsed Torrent (aligned to zarr chunks)

    def chunk_files(self, array: str) -> dict[str, int]:
        """Chunk (or shard) file -> size, keyed by its path in the torrent."""
        base = self.root / "ds" / array
        return {
            f"ds/{array}/{p.relative_to(base).as_posix()}": p.stat().st_size
            for p in base.rglob("*")
            if p.is_file() and p.name != "zarr.json"
        }


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    np = pytest.importorskip("numpy")
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    from holdfast.torrents import create_torrent

    root = tmp_path_factory.mktemp("webseed")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 1 << 16, size=SHAPE, dtype="uint16")
    plain = zarr.create_array(
        root / "ds" / "frames.zarr", shape=SHAPE, chunks=(4, 128, 128), dtype="uint16"
    )
    plain[:] = data
    sharded = zarr.create_array(
        root / "ds" / "sharded.zarr",
        shape=SHAPE,
        chunks=(1, 64, 64),
        shards=(16, 128, 128),
        dtype="uint16",
    )
    sharded[:] = data
    with h5py.File(root / "ds" / "session.h5", "w") as handle:
        handle.create_dataset("acquisition/frames", data=data, chunks=(1, 128, 128))
        handle.attrs["subject"] = "mouse 7"
    (root / "ds" / "README.txt").write_text("frames of a mouse visual cortex\n")
    with RangeServer(root) as server:
        torrents = {
            version: create_torrent(
                root / "ds", version=version, align="zarr", webseeds=[server.url]
            ).torrent
            for version in ("v1", "v2", "hybrid")
        }
        yield Dataset(root, data, server, torrents)
