"""The parsed form of a torrent: :class:`Torrent`, its files and piece arithmetic."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, overload
from urllib.parse import quote

from holdfast.torrents.errors import TorrentError

__all__ = ["FileList", "PieceSpan", "Torrent", "TorrentFile"]

Version = Literal["v1", "v2", "hybrid"]

#: BEP 52 hashes each file in 16 KiB blocks.
BLOCK_SIZE = 16 * 1024


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """One real file of a torrent (pad files are never shown)."""

    #: '/'-separated, relative, cleaned; starts with the torrent's name for multi-file torrents
    path: str
    size: int
    #: byte offset in the v1 piece stream (padding included); None for v2-only torrents
    offset: int | None
    #: BEP 52 merkle root of the file (None for v1-only torrents and for empty files)
    pieces_root: bytes | None
    #: BEP 47 attributes: ``x`` executable, ``h`` hidden, ``l`` symlink
    attr: str = ""
    #: for a symlink (``l``), its target as a cleaned path inside the torrent
    symlink_target: str | None = None


@dataclass(frozen=True, slots=True)
class PieceSpan:
    """The pieces that hold a byte range of one file.

    ``first``..``last`` are piece indices as libtorrent numbers them: in the v1
    piece stream for v1 and hybrid torrents, and in the piece-aligned layout of
    a v2-only torrent (every file starts on a piece boundary). ``start`` is the
    byte offset of the range inside piece ``first``. For v2 and hybrid
    torrents, ``file_first``..``file_last`` index the file's own piece layer
    (its v2 merkle tree), else they are None.
    """

    first: int
    last: int
    start: int
    length: int
    file_first: int | None
    file_last: int | None

    @property
    def pieces(self) -> range:
        return range(self.first, self.last + 1)

    @property
    def file_pieces(self) -> range | None:
        if self.file_first is None or self.file_last is None:
            return None
        return range(self.file_first, self.file_last + 1)


class FileList(Sequence[TorrentFile]):
    """The real files of a torrent, stored column-wise to stay small.

    A 100,000-file torrent keeps one list of paths and a few arrays, not
    100,000 objects; a :class:`TorrentFile` is built when asked for.
    """

    __slots__ = ("_attrs", "_index", "_offsets", "_paths", "_roots", "_sizes", "_symlinks")

    def __init__(
        self,
        paths: list[str],
        sizes: array[int],
        offsets: array[int] | None,
        roots: list[bytes | None] | None,
        attrs: dict[int, str],
        symlinks: dict[int, str],
    ) -> None:
        self._paths = paths
        self._sizes = sizes
        self._offsets = offsets
        self._roots = roots
        self._attrs = attrs
        self._symlinks = symlinks
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._paths)

    @overload
    def __getitem__(self, index: int) -> TorrentFile: ...

    @overload
    def __getitem__(self, index: slice) -> list[TorrentFile]: ...

    def __getitem__(self, index: int | slice) -> TorrentFile | list[TorrentFile]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(len(self._paths)))]
        if index < 0:
            index += len(self._paths)
        if not 0 <= index < len(self._paths):
            raise IndexError("file index out of range")
        return self._make(index)

    def __iter__(self) -> Iterator[TorrentFile]:
        for i in range(len(self._paths)):
            yield self._make(i)

    def _make(self, i: int) -> TorrentFile:
        return TorrentFile(
            path=self._paths[i],
            size=self._sizes[i],
            offset=None if self._offsets is None else self._offsets[i],
            pieces_root=None if self._roots is None else self._roots[i],
            attr=self._attrs.get(i, ""),
            symlink_target=self._symlinks.get(i),
        )

    @property
    def paths(self) -> list[str]:
        """All paths, in order (a copy)."""
        return list(self._paths)

    @property
    def sizes(self) -> list[int]:
        return self._sizes.tolist()

    def index_of(self, path: str) -> int:
        """Index of the file with this path; raises :class:`TorrentError` if absent."""
        if self._index is None:
            # The first path wins, as for duplicate paths only the first is reachable.
            index: dict[str, int] = {}
            for i, p in enumerate(self._paths):
                index.setdefault(p, i)
            self._index = index
        try:
            return self._index[path]
        except KeyError:
            raise TorrentError(f"no file {path!r} in this torrent") from None


class Torrent:
    """A parsed, validated torrent. Build one with :func:`holdfast.torrents.parse_torrent`."""

    __slots__ = (
        "_aligned_offsets",
        "_stream_size",
        "canonical",
        "collections",
        "comment",
        "created_by",
        "creation_date",
        "files",
        "info_bytes",
        "infohash_v1",
        "infohash_v2",
        "name",
        "piece_layers",
        "piece_length",
        "pieces",
        "private",
        "similar",
        "total_size",
        "trackers",
        "webseeds",
    )

    def __init__(
        self,
        *,
        info_bytes: bytes,
        canonical: bool,
        infohash_v1: str | None,
        infohash_v2: str | None,
        name: str,
        piece_length: int,
        files: FileList,
        aligned_offsets: array[int] | None,
        stream_size: int,
        pieces: bytes | None,
        piece_layers: dict[bytes, bytes],
        trackers: list[list[str]],
        webseeds: list[str],
        private: bool,
        comment: str | None,
        created_by: str | None,
        creation_date: int | None,
        similar: list[str],
        collections: list[str],
    ) -> None:
        self.info_bytes = info_bytes
        #: the file is canonical bencoding (False for files libtorrent reads
        #: despite unsorted keys, leading zeros or bytes after the end)
        self.canonical = canonical
        self.infohash_v1 = infohash_v1
        self.infohash_v2 = infohash_v2
        self.name = name
        self.piece_length = piece_length
        self.files = files
        self._aligned_offsets = aligned_offsets
        # bytes in the piece stream, padding included (up to the end of the last piece's data)
        self._stream_size = stream_size
        #: concatenated 20-byte SHA-1 piece hashes (v1 and hybrid), else None
        self.pieces = pieces
        #: BEP 52 piece layers found in the file: pieces root -> concatenated piece hashes
        self.piece_layers = piece_layers
        self.trackers = trackers
        self.webseeds = webseeds
        self.private = private
        self.comment = comment
        self.created_by = created_by
        self.creation_date = creation_date
        self.similar = similar
        self.collections = collections
        self.total_size = sum(files._sizes)

    # -- identity ---------------------------------------------------------

    @property
    def version(self) -> Version:
        if self.infohash_v1 is not None and self.infohash_v2 is not None:
            return "hybrid"
        return "v1" if self.infohash_v1 is not None else "v2"

    @property
    def infohash_v2_truncated(self) -> str | None:
        """The first 20 bytes of the v2 infohash, as trackers and the DHT use it."""
        return None if self.infohash_v2 is None else self.infohash_v2[:40]

    @property
    def infohash(self) -> str:
        """The preferred identifier: the v2 infohash if there is one, else the v1 infohash."""
        ih = self.infohash_v2 or self.infohash_v1
        if ih is None:  # pragma: no cover - the parser never builds such a torrent
            raise TorrentError("torrent has no infohash")
        return ih

    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def num_pieces(self) -> int:
        """Pieces in the torrent (v1 stream, or the piece-aligned v2 layout)."""
        if self.pieces is not None:
            return len(self.pieces) // 20
        return self._v2_piece_count()

    def _v2_piece_count(self) -> int:
        return -(-self._stream_size // self.piece_length)

    def stream_layout(self) -> list[tuple[int, int]]:
        """(offset, padding after it) of each file in the piece stream.

        The stream is what the pieces hash: the v1 piece stream for v1 and
        hybrid torrents, the piece-aligned layout for v2-only torrents.
        """
        files = self.files
        offsets = files._offsets if files._offsets is not None else self._aligned_offsets
        if offsets is None:  # pragma: no cover - the parser always sets one
            raise TorrentError("torrent has no piece layout")
        out = []
        n = len(files)
        for i in range(n):
            end = offsets[i] + files._sizes[i]
            following = offsets[i + 1] if i + 1 < n else max(end, self._stream_size)
            out.append((offsets[i], following - end))
        return out

    def magnet(self, name: bool = True, trackers: bool = True) -> str:
        """A magnet link (BEP 9; ``btmh`` multihash for v2 as in BEP 52)."""
        parts: list[str] = []
        if self.infohash_v1 is not None:
            parts.append(f"xt=urn:btih:{self.infohash_v1}")
        if self.infohash_v2 is not None:
            parts.append(f"xt=urn:btmh:1220{self.infohash_v2}")
        if name:
            parts.append("dn=" + quote(self.name, safe=""))
        if trackers:
            for tier in self.trackers:
                parts.extend("tr=" + quote(url, safe="") for url in tier)
        return "magnet:?" + "&".join(parts)

    def __repr__(self) -> str:
        return (
            f"<Torrent {self.version} {self.name!r} {self.file_count} files "
            f"{self.total_size} bytes {self.infohash}>"
        )

    # -- piece arithmetic --------------------------------------------------

    def piece_span(self, path: str, offset: int = 0, length: int | None = None) -> PieceSpan:
        """The pieces covering bytes ``offset .. offset+length`` of the file at ``path``.

        ``length`` defaults to the rest of the file. Raises :class:`TorrentError`
        for an unknown path or a range outside the file. A zero-length range
        (an empty file) covers no piece: ``last`` is then ``first - 1``.
        """
        index = self.files.index_of(path)
        return self.piece_span_at(index, offset, length)

    def piece_span_at(self, index: int, offset: int = 0, length: int | None = None) -> PieceSpan:
        """Like :meth:`piece_span`, for the file at position ``index`` in :attr:`files`."""
        files = self.files
        if not 0 <= index < len(files):
            raise TorrentError(f"no file at index {index}")
        size = files._sizes[index]
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise TorrentError(
                f"range {offset}+{length} is outside {files._paths[index]!r} ({size} bytes)"
            )
        plen = self.piece_length
        base = files._offsets[index] if files._offsets is not None else None
        if base is None:
            if self._aligned_offsets is None:  # pragma: no cover - parser sets one of them
                raise TorrentError("torrent has no piece layout")
            base = self._aligned_offsets[index]
        absolute = base + offset
        first = absolute // plen
        last = (absolute + length - 1) // plen if length else first - 1
        file_first: int | None = None
        file_last: int | None = None
        if self.infohash_v2 is not None:
            file_first = offset // plen
            file_last = (offset + length - 1) // plen if length else file_first - 1
        return PieceSpan(
            first=first,
            last=last,
            start=absolute - first * plen,
            length=length,
            file_first=file_first,
            file_last=file_last,
        )

    def files_in_piece(self, piece: int) -> list[int]:
        """Indices (in :attr:`files`) of the real files that piece ``piece`` touches."""
        if not 0 <= piece < self.num_pieces:
            raise TorrentError(f"piece {piece} is out of range")
        offsets = self.files._offsets if self.files._offsets is not None else self._aligned_offsets
        if offsets is None:  # pragma: no cover
            return []
        lo = piece * self.piece_length
        hi = lo + self.piece_length
        sizes = self.files._sizes
        # offsets are non-decreasing, so the candidates are a contiguous run
        i = max(bisect.bisect_right(offsets, lo) - 1, 0)
        out: list[int] = []
        while i < len(sizes) and offsets[i] < hi:
            if sizes[i] and offsets[i] + sizes[i] > lo:
                out.append(i)
            i += 1
        return out
