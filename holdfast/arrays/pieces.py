"""Piece geometry of a torrent for readers: which bytes of which files make up a piece,
and whether fetched bytes are the piece the torrent promises.

Pieces are numbered as libtorrent numbers them (the v1 piece stream of v1 and hybrid
torrents, the piece-aligned layout of v2 torrents), so a fetcher that asks a BitTorrent
session for pieces and one that asks web servers for byte ranges share one description.

Verification prefers BEP 52 (SHA-256 merkle, per file), which needs only the file's own
bytes; it falls back to the v1 SHA-1 of the whole piece (pad files count as zeros).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from holdfast.arrays.errors import FileNotInTorrent, SourceError
from holdfast.torrents import Torrent, TorrentError, TorrentFile
from holdfast.torrents.merkle import BLOCK_SIZE, merkle_root


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes `file_start .. file_start+length` of file `file_index`, at `piece_offset`."""

    file_index: int
    file_start: int
    length: int
    piece_offset: int


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece: its index, its length, and the file bytes it holds (gaps are zeros)."""

    index: int
    length: int
    segments: tuple[Segment, ...]

    @property
    def data_bytes(self) -> int:
        """Bytes of real file data in the piece (what a web server is asked for)."""
        return sum(s.length for s in self.segments)


class PieceMap:
    """Where files sit in a torrent's pieces, and how to check a piece's bytes."""

    def __init__(self, torrent: Torrent) -> None:
        self.torrent = torrent
        self.piece_length = torrent.piece_length
        self._offsets: list[int | None] = []
        for index, file in enumerate(torrent.files):
            if file.size == 0:
                self._offsets.append(None)
                continue
            span = torrent.piece_span_at(index, 0, file.size)
            self._offsets.append(span.first * self.piece_length + span.start)
        ends = [
            o + f.size for o, f in zip(self._offsets, torrent.files, strict=True) if o is not None
        ]
        self.stream_length = max(ends, default=0)

    @cached_property
    def index(self) -> dict[str, int]:
        # the first of duplicate paths wins, as in the torrent model
        found: dict[str, int] = {}
        for i, path in enumerate(self.torrent.files.paths):
            found.setdefault(path, i)
        return found

    def file_index(self, path: str) -> int:
        try:
            return self.index[path]
        except KeyError:
            raise FileNotInTorrent(f"no file {path!r} in this torrent") from None

    def file(self, index: int) -> TorrentFile:
        return self.torrent.files[index]

    def file_offset(self, index: int) -> int | None:
        """The file's offset in the piece stream (None for an empty file)."""
        return self._offsets[index]

    @property
    def num_pieces(self) -> int:
        return self.torrent.num_pieces

    def pieces_for(self, file_index: int, start: int, end: int) -> range:
        """Indices of the pieces holding bytes `start .. end` of a file."""
        if end <= start:
            return range(0)
        try:
            span = self.torrent.piece_span_at(file_index, start, end - start)
        except TorrentError as exc:
            raise SourceError(str(exc)) from None
        return span.pieces

    def piece(self, index: int) -> Piece:
        if not 0 <= index < self.num_pieces:
            raise SourceError(f"piece {index} is out of range")
        plen = self.piece_length
        lo = index * plen
        segments: list[Segment] = []
        for file_index in self.torrent.files_in_piece(index):
            offset = self._offsets[file_index]
            if offset is None:
                continue
            size = self.torrent.files[file_index].size
            start = max(lo, offset)
            stop = min(lo + plen, offset + size)
            if stop > start:
                segments.append(Segment(file_index, start - offset, stop - start, start - lo))
        if self.torrent.pieces is not None:
            length = min(plen, self.stream_length - lo)
        else:
            length = max((s.piece_offset + s.length for s in segments), default=0)
        return Piece(index, length, tuple(segments))

    def file_pieces(self, file_index: int, data: bytes) -> list[tuple[int, bytes]] | None:
        """The pieces a file's whole content makes, each checked against the torrent.

        None when `data` is not that file, or cannot be shown to be: a piece that also
        holds another file's bytes (an unaligned v1 torrent) cannot be checked from this
        file alone.
        """
        file = self.file(file_index)
        if len(data) != file.size:
            return None
        offset = self.file_offset(file_index)
        if offset is None:
            return []  # an empty file needs no piece
        found: list[tuple[int, bytes]] = []
        for index in self.pieces_for(file_index, 0, file.size):
            piece = self.piece(index)
            if any(s.file_index != file_index for s in piece.segments):
                return None
            buffer = bytearray(piece.length)
            for s in piece.segments:
                buffer[s.piece_offset : s.piece_offset + s.length] = data[
                    s.file_start : s.file_start + s.length
                ]
            if not self.verify(piece, bytes(buffer)):
                return None
            found.append((index, bytes(buffer)))
        return found

    def can_verify(self, piece: Piece) -> bool:
        return self._v2_hash(piece) is not None or self.torrent.pieces is not None

    def verify(self, piece: Piece, data: bytes) -> bool:
        """True when `data` is exactly the piece the torrent describes."""
        if len(data) != piece.length:
            return False
        expected = self._v2_hash(piece)
        if expected is not None:
            segment = piece.segments[0]
            own = data[segment.piece_offset : segment.piece_offset + segment.length]
            file = self.torrent.files[segment.file_index]
            blocks = [
                hashlib.sha256(own[i : i + BLOCK_SIZE]).digest()
                for i in range(0, len(own), BLOCK_SIZE)
            ]
            if file.size <= self.piece_length:
                return merkle_root(blocks) == expected
            return merkle_root(blocks, width=self.piece_length // BLOCK_SIZE) == expected
        if self.torrent.pieces is not None:
            want = self.torrent.pieces[piece.index * 20 : piece.index * 20 + 20]
            return hashlib.sha1(data, usedforsecurity=False).digest() == want
        return False

    def _v2_hash(self, piece: Piece) -> bytes | None:
        """The BEP 52 hash this piece must have, when the torrent gives one."""
        if self.torrent.infohash_v2 is None or len(piece.segments) != 1:
            return None
        segment = piece.segments[0]
        file = self.torrent.files[segment.file_index]
        root = file.pieces_root
        if root is None or segment.file_start % self.piece_length:
            return None
        if file.size <= self.piece_length:
            return root
        layer = self.torrent.piece_layers.get(root)
        if layer is None:
            return None
        k = segment.file_start // self.piece_length
        value = layer[k * 32 : k * 32 + 32]
        return value if len(value) == 32 else None
