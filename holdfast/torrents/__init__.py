"""Torrents: parse untrusted .torrent files, create v1/v2/hybrid torrents, verify data.

Public API::

    from holdfast.torrents import parse_torrent, Torrent, TorrentFile, TorrentError
    from holdfast.torrents import bencode

    t = parse_torrent(data)          # raises TorrentError, nothing else
    t.infohash_v1, t.infohash_v2, t.infohash_v2_truncated, t.version
    t.files[0].path, .size, .offset, .pieces_root, .attr
    t.piece_span("name/a.zarr/0.0", offset, length)   # pieces covering a byte range
    t.magnet()
"""

from holdfast.torrents import bencode
from holdfast.torrents.errors import BencodeError, TorrentError
from holdfast.torrents.model import FileList, PieceSpan, Torrent, TorrentFile
from holdfast.torrents.parse import parse_torrent

__all__ = [
    "BencodeError",
    "FileList",
    "PieceSpan",
    "Torrent",
    "TorrentError",
    "TorrentFile",
    "bencode",
    "parse_torrent",
]
