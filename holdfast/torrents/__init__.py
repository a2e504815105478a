"""Torrents: parse untrusted .torrent files, create v1/v2/hybrid torrents, verify data.

Parsing (:func:`parse_torrent`) accepts exactly the files libtorrent accepts,
with the same infohashes, files and sizes, and raises :class:`TorrentError`
(with a readable ``.reason``) for anything else - never another exception.
Paths are cleaned as libtorrent cleans them, so none leaves the download
folder. ``strict=True`` also refuses bencoding that is not canonical::

    from holdfast.torrents import parse_torrent, TorrentError

    t = parse_torrent(data)
    t.version                     # "v1", "v2" or "hybrid"
    t.infohash_v1, t.infohash_v2  # hex; None when the torrent has no such hash
    t.infohash_v2_truncated       # the 40-hex form trackers and the DHT use
    t.name, t.piece_length, t.num_pieces, t.total_size, t.file_count
    t.files[0].path, .size, .offset, .pieces_root, .attr   # pad files hidden
    t.trackers, t.webseeds, t.private, t.comment, t.created_by, t.creation_date
    t.similar, t.collections      # BEP 38
    t.info_bytes                  # the info dict exactly as found in the file
    t.canonical                   # False for sloppy bencoding libtorrent still reads
    t.magnet()

Piece arithmetic, for reading part of a file (a zarr chunk, say) without
downloading the rest::

    span = t.piece_span("sst.zarr/temp/c/0/0", offset=0, length=None)
    span.pieces        # range of piece indices, numbered as libtorrent numbers
                       # them (v1 stream for v1/hybrid, piece-aligned layout
                       # for v2-only) - what set_piece_deadline/read_piece take
    span.start         # byte offset of the range inside the first piece
    span.file_pieces   # range in the file's own v2 piece layer (v2/hybrid)
    t.files_in_piece(i)  # the files a piece touches

Creating (:func:`create_torrent`) hashes on every core with bounded memory::

    created = create_torrent("dataset/", version="hybrid", trackers=["https://t/announce"])
    created.data        # the .torrent bytes
    created.torrent     # its parsed Torrent

Checking data on disk: :func:`verify_data` (names the bad pieces and files).
Bencoding: :mod:`holdfast.torrents.bencode` (``encode``, ``decode``).
"""

from holdfast.torrents import bencode
from holdfast.torrents.create import CreatedTorrent, ProgressCallback, create_torrent
from holdfast.torrents.errors import BencodeError, TorrentError
from holdfast.torrents.model import FileList, PieceSpan, Torrent, TorrentFile
from holdfast.torrents.parse import parse_torrent
from holdfast.torrents.verify import VerifyResult, verify_data

__all__ = [
    "BencodeError",
    "CreatedTorrent",
    "FileList",
    "PieceSpan",
    "ProgressCallback",
    "Torrent",
    "TorrentError",
    "TorrentFile",
    "VerifyResult",
    "bencode",
    "create_torrent",
    "parse_torrent",
    "verify_data",
]
