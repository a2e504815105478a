"""Torrents: parse untrusted .torrent files, create v1/v2/hybrid torrents, verify data.

Public API::

    from holdfast.torrents import parse_torrent, Torrent, TorrentFile, TorrentError
    from holdfast.torrents import bencode
from holdfast.torrents.create import CreatedTorrent, ProgressCallback, create_torrent

    t = parse_torrent(data)          # raises TorrentError, nothing else
    t.infohash_v1, t.infohash_v2, t.infohash_v2_truncated, t.version
    t.files[0].path, .size, .offset, .pieces_root, .attr
    t.piece_span("name/a.zarr/0.0", offset, length)   # pieces covering a byte range
    t.magnet()

    created = create_torrent("dataset/", version="hybrid", trackers=["https://t/announce"])
    created.data        # the .torrent bytes
    created.torrent     # its parsed Torrent
"""

from holdfast.torrents import bencode
from holdfast.torrents.create import CreatedTorrent, ProgressCallback, create_torrent
from holdfast.torrents.errors import BencodeError, TorrentError
from holdfast.torrents.model import FileList, PieceSpan, Torrent, TorrentFile
from holdfast.torrents.parse import parse_torrent

__all__ = [
    "BencodeError",
    "CreatedTorrent",
    "FileList",
    "PieceSpan",
    "ProgressCallback",
    "Torrent",
    "TorrentError",
    "TorrentFile",
    "bencode",
    "create_torrent",
    "parse_torrent",
]
