"""Creating v1, v2 and hybrid torrents, hashing on every core (see :mod:`.hashing`).

The result is deterministic: files are ordered as BEP 52 orders the file
tree, and nothing that varies between runs (times, order of directory
listing) enters the info dictionary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from holdfast import __version__
from holdfast.torrents import bencode
from holdfast.torrents.errors import TorrentError
from holdfast.torrents.files import SourceFile, list_source_files
from holdfast.torrents.hashing import ProgressCallback, Stream, StreamFile, file_root, hash_stream
from holdfast.torrents.model import Torrent
from holdfast.torrents.parse import MAX_PIECE_LENGTH, parse_torrent
from holdfast.torrents.piece_size import MIN_PIECE_LENGTH, choose_piece_length
from holdfast.torrents.zarr_layout import zarr_store_piece_length

__all__ = ["CreatedTorrent", "ProgressCallback", "create_torrent"]

Version = Literal["v1", "v2", "hybrid"]


@dataclass(frozen=True, slots=True)
class CreatedTorrent:
    """A new torrent: the .torrent bytes and their parsed form."""

    data: bytes
    torrent: Torrent

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_bytes(self.data)


def create_torrent(
    path: str | os.PathLike[str],
    *,
    version: Version = "hybrid",
    piece_length: int | None = None,
    align: Literal["zarr"] | None = None,
    trackers: Sequence[str | Sequence[str]] = (),
    webseeds: Sequence[str] = (),
    comment: str | None = None,
    private: bool = False,
    created_by: str | None = f"holdfast {__version__}",
    creation_date: int | None = None,
    similar: Sequence[str] = (),
    collections: Sequence[str] = (),
    include_junk: bool = False,
    threads: int | None = None,
    processes: bool | None = None,
    progress: ProgressCallback | None = None,
) -> CreatedTorrent:
    """Make a torrent of the file or folder at ``path``.

    ``version``: ``"v1"``, ``"v2"`` or ``"hybrid"`` (BEP 52 plus BEP 47 pad
    files, readable by v1-only clients). ``piece_length``: a power of two of at
    least 16 KiB, or None to choose one from the file sizes; ``align="zarr"``
    chooses it from the zarr chunk sizes instead, from the inner chunks for
    sharded arrays (see :mod:`.zarr_layout`), and pads a v1 torrent so each
    file starts on a piece boundary. ``trackers``: each item is a URL (its own
    tier) or a list of URLs (one tier). ``creation_date`` defaults to now; it
    is outside the info dictionary, so the infohash does not depend on it.
    Junk files (``.DS_Store``, ``Thumbs.db``, editor swap files...) are left
    out unless ``include_junk``. ``threads`` (the number of hashing workers)
    defaults to the number of cores; ``processes`` makes them child processes
    (True) or threads (False), by default processes for large inputs (see
    :func:`~holdfast.torrents.hashing.hash_stream`); the torrent is the same.
    """
    if version not in ("v1", "v2", "hybrid"):
        raise TorrentError(f"unknown torrent version {version!r}")
    if align not in (None, "zarr"):
        raise TorrentError(f"unknown alignment {align!r}")
    source = Path(path)
    files = list_source_files(source, include_junk=include_junk)
    if not files:
        raise TorrentError(f"no files to put in a torrent under {source}")
    if sum(f.size for f in files) == 0:
        raise TorrentError("all files are empty; a torrent needs at least one byte of data")
    sizes = [f.size for f in files]

    if piece_length is None:
        if align == "zarr":
            piece_length = zarr_store_piece_length(files)
        else:
            piece_length = choose_piece_length(sizes, version)
    _check_piece_length(piece_length, version)

    aligned = version != "v1" or align == "zarr"
    name = source.name or source.resolve().name
    layout = _Layout(files, piece_length, aligned)
    stream = Stream([StreamFile(f.path, f.size) for f in files], layout.pads, piece_length)
    hashes = hash_stream(
        stream,
        v1=version in ("v1", "hybrid"),
        v2=version in ("v2", "hybrid"),
        threads=threads,
        processes=processes,
        progress=progress,
    )
    roots: list[bytes | None] = [None] * len(files)
    layers: dict[bytes, bytes] = {}
    for index, pieces in hashes.v2.items():
        root, layer = file_root(pieces, files[index].size, piece_length)
        roots[index] = root
        if layer:
            layers[root] = layer

    info: dict[bytes, Any] = {b"name": name.encode("utf-8"), b"piece length": piece_length}
    single = len(files) == 1 and not files[0].components
    if version in ("v2", "hybrid"):
        info[b"meta version"] = 2
        info[b"file tree"] = _file_tree(files, roots, single)
    if version in ("v1", "hybrid"):
        info[b"pieces"] = b"".join(hashes.v1)
        if single:
            info[b"length"] = files[0].size
        else:
            info[b"files"] = _file_list(layout)
    if private:
        info[b"private"] = 1
    if similar:
        info[b"similar"] = [_infohash_bytes(h) for h in similar]
    if collections:
        info[b"collections"] = [c.encode("utf-8") for c in collections]

    meta: dict[bytes, Any] = {b"info": info}
    tiers = _tiers(trackers)
    if tiers:
        meta[b"announce"] = tiers[0][0].encode("utf-8")
        if len(tiers) > 1 or len(tiers[0]) > 1:
            meta[b"announce-list"] = [[u.encode("utf-8") for u in tier] for tier in tiers]
    if webseeds:
        meta[b"url-list"] = [u.encode("utf-8") for u in webseeds]
    if comment:
        meta[b"comment"] = comment.encode("utf-8")
    if created_by:
        meta[b"created by"] = created_by.encode("utf-8")
    meta[b"creation date"] = int(time.time()) if creation_date is None else creation_date
    if layers:
        meta[b"piece layers"] = layers

    data = bencode.encode(meta)
    return CreatedTorrent(data=data, torrent=parse_torrent(data, strict=True))


def _check_piece_length(piece_length: int, version: Version) -> None:
    if not isinstance(piece_length, int) or piece_length < MIN_PIECE_LENGTH:
        raise TorrentError(f"piece length must be at least 16 KiB, not {piece_length}")
    if piece_length & (piece_length - 1):
        raise TorrentError(f"piece length must be a power of two, not {piece_length}")
    if piece_length > MAX_PIECE_LENGTH:
        raise TorrentError(f"piece length must be at most 512 MiB, not {piece_length}")


def _infohash_bytes(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise TorrentError(f"a similar torrent must be a 40-hex v1 infohash, not {value!r}")
    return raw


def _tiers(trackers: Sequence[str | Sequence[str]]) -> list[list[str]]:
    tiers: list[list[str]] = []
    for item in trackers:
        tier = [item] if isinstance(item, str) else list(item)
        tier = [u.strip() for u in tier if u.strip()]
        if tier:
            tiers.append(tier)
    return tiers


# -- layout ---------------------------------------------------------------


class _Layout:
    """Where each file sits in the piece stream, with padding when aligned."""

    def __init__(self, files: list[SourceFile], piece_length: int, aligned: bool) -> None:
        self.files = files
        self.piece_length = piece_length
        self.aligned = aligned
        self.offsets: list[int] = []
        #: padding after file i (0 for the last file: no tail padding)
        self.pads: list[int] = []
        offset = 0
        for i, f in enumerate(files):
            self.offsets.append(offset)
            offset += f.size
            pad = 0
            if aligned and i < len(files) - 1 and offset % piece_length:
                pad = piece_length - offset % piece_length
            self.pads.append(pad)
            offset += pad
        self.total = offset


def _file_list(layout: _Layout) -> list[dict[bytes, Any]]:
    out: list[dict[bytes, Any]] = []
    for f, pad in zip(layout.files, layout.pads, strict=True):
        out.append({b"length": f.size, b"path": [c.encode("utf-8") for c in f.components]})
        if pad:
            out.append({b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]})
    return out


def _file_tree(
    files: list[SourceFile], roots: list[bytes | None], single: bool
) -> dict[bytes, Any]:
    tree: dict[bytes, Any] = {}
    for f, root in zip(files, roots, strict=True):
        components = [os.path.basename(f.path)] if single else list(f.components)
        node = tree
        for c in components[:-1]:
            node = node.setdefault(c.encode("utf-8"), {})
        leaf: dict[bytes, Any] = {b"length": f.size}
        if root is not None:
            leaf[b"pieces root"] = root
        node[components[-1].encode("utf-8")] = {b"": leaf}
    return tree
