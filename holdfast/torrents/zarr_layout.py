"""What a zarr store's readers fetch, for ``align="zarr"`` piece lengths.

Chunks of an unsharded array are files read whole. A sharded array (zarr v3
``sharding_indexed``) stores many inner chunks in each shard file, with an
index of where each one is; readers fetch single inner chunks. This module
finds the arrays from their metadata (``zarr.json``, ``.zarray``) and, for
sharded ones, reads each shard's index for the stored size of every inner
chunk, so that :func:`~holdfast.torrents.piece_size.zarr_piece_length` sizes
pieces for what is really read. Only the files listed for the torrent are
read, never through a symlink, and only metadata and shard indexes.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from holdfast.torrents.errors import TorrentError
from holdfast.torrents.files import SourceFile
from holdfast.torrents.piece_size import is_zarr_chunk, zarr_piece_length

__all__ = ["zarr_store_piece_length"]

# Metadata files larger than this are not zarr metadata we can use.
_MAX_METADATA_BYTES = 1 << 20
# Indexes larger than this are not read; the inner chunk size is estimated.
_MAX_INDEX_BYTES = 1 << 20
# Sharded arrays holding less than this share of the store's array bytes
# (coordinates, masks) do not set the piece length.
_MIN_SHARE = 0.01
_EMPTY = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Sharding:
    """How one sharded array lays out its shard files."""

    #: inner chunks per shard
    inner_chunks: int
    #: bytes of the index, and where it is
    index_bytes: int
    index_at_end: bool
    #: struct format of one index entry (offset, nbytes), or None when the
    #: index is encoded in a way we do not read (its size is then estimated)
    entry_format: str | None


def _read(f: SourceFile, offset: int, length: int) -> bytes:
    try:
        fd = os.open(f.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TorrentError(f"cannot read {f.path}: {exc.strerror}") from None
    try:
        return os.pread(fd, length, offset)
    except OSError as exc:
        raise TorrentError(f"cannot read {f.path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _metadata(f: SourceFile) -> dict[str, Any] | None:
    if f.size > _MAX_METADATA_BYTES:
        return None
    try:
        document = json.loads(_read(f, 0, f.size))
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _shape(value: object) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(n, int) and n > 0 for n in value):
        return value
    return None


def sharding_of(metadata: dict[str, Any]) -> Sharding | None:
    """The sharding of a zarr v3 array from its ``zarr.json``; None when it is not sharded.

    Arrays whose sharding we cannot make sense of count as unsharded.
    """
    codecs = metadata.get("codecs")
    grid = metadata.get("chunk_grid")
    if not isinstance(codecs, list) or not isinstance(grid, dict):
        return None
    codec = next(
        (c for c in codecs if isinstance(c, dict) and c.get("name") == "sharding_indexed"), None
    )
    if codec is None or not isinstance(codec.get("configuration"), dict):
        return None
    config = codec["configuration"]
    grid_config = grid.get("configuration")
    outer = _shape(grid_config.get("chunk_shape")) if isinstance(grid_config, dict) else None
    inner = _shape(config.get("chunk_shape"))
    if outer is None or inner is None or len(outer) != len(inner):
        return None
    if any(o % i for o, i in zip(outer, inner, strict=True)):
        return None
    count = math.prod(o // i for o, i in zip(outer, inner, strict=True))

    index_codecs = config.get("index_codecs")
    names = (
        [c.get("name") if isinstance(c, dict) else None for c in index_codecs]
        if isinstance(index_codecs, list)
        else []
    )
    entry_format: str | None = None
    checksum = 4 if "crc32c" in names else 0
    if names in (["bytes"], ["bytes", "crc32c"]):
        bytes_config = index_codecs[0].get("configuration")
        endian = bytes_config.get("endian", "little") if isinstance(bytes_config, dict) else None
        if isinstance(endian, str):
            entry_format = {"little": "<QQ", "big": ">QQ"}.get(endian)
    return Sharding(
        inner_chunks=count,
        index_bytes=16 * count + checksum,
        index_at_end=config.get("index_location", "end") != "start",
        entry_format=entry_format,
    )


def inner_chunk_sizes(shard: SourceFile, sharding: Sharding) -> list[int]:
    """Stored sizes of the inner chunks in one shard file (empty ones left out).

    Read from the shard's index; estimated as equal shares of the file when
    the index cannot be read or makes no sense.
    """
    n = sharding.inner_chunks
    data_bytes = shard.size - sharding.index_bytes
    if data_bytes <= 0:
        return []
    if sharding.entry_format is not None and sharding.index_bytes <= _MAX_INDEX_BYTES:
        at = data_bytes if sharding.index_at_end else 0
        raw = _read(shard, at, 16 * n)
        if len(raw) == 16 * n:
            sizes: list[int] = []
            for offset, nbytes in struct.iter_unpack(sharding.entry_format, raw):
                if offset == _EMPTY and nbytes == _EMPTY:
                    continue
                if offset + nbytes > shard.size:
                    break
                sizes.append(nbytes)
            else:
                return sizes
    # equal shares; no more of them than a readable index could list
    return [data_bytes // n] * min(n, _MAX_INDEX_BYTES // 16)


def _array_of(
    components: tuple[str, ...], arrays: dict[tuple[str, ...], Sharding | None]
) -> tuple[str, ...] | None:
    for k in range(len(components) - 1, -1, -1):
        if components[:k] in arrays:
            return components[:k]
    return None


def zarr_store_piece_length(files: Sequence[SourceFile]) -> int:
    """The piece length for ``align="zarr"`` over these files (in torrent order).

    Without any array metadata among the files, every file that is not
    metadata counts as a chunk read whole.
    """
    arrays: dict[tuple[str, ...], Sharding | None] = {}
    for f in files:
        if not f.components:
            continue
        name = f.components[-1]
        if name == "zarr.json":
            metadata = _metadata(f)
            if metadata is not None and metadata.get("node_type") == "array":
                arrays[f.components[:-1]] = sharding_of(metadata)
        elif name == ".zarray":  # zarr v2 has no sharding
            arrays[f.components[:-1]] = None
    sizes = [f.size for f in files]
    if not arrays:
        return zarr_piece_length(
            [f.size for f in files if is_zarr_chunk(f.components)], sizes=sizes
        )

    whole: list[int] = []
    shards: dict[tuple[str, ...], list[SourceFile]] = {}
    for f in files:
        if not is_zarr_chunk(f.components):
            continue
        array = _array_of(f.components, arrays)
        if array is None:
            continue  # not array data (a README beside the store, say)
        if arrays[array] is None:
            whole.append(f.size)
        else:
            shards.setdefault(array, []).append(f)
    total = sum(whole) + sum(f.size for group in shards.values() for f in group)

    def inner(array: tuple[str, ...]) -> Iterator[int]:
        sharding = arrays[array]
        if sharding is not None:
            for shard in shards[array]:
                yield from inner_chunk_sizes(shard, sharding)

    significant = [
        array for array, group in shards.items() if sum(f.size for f in group) >= _MIN_SHARE * total
    ]
    return zarr_piece_length(whole, [inner(a) for a in significant], sizes=sizes)
