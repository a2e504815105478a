"""The one exception family of :mod:`holdfast.torrents`.

    TorrentError            anything wrong with a torrent, its data or its creation
     └── BencodeError       the bytes are not (acceptable) bencoding

Every failure on untrusted input surfaces as one of these, with a sentence a
person can read in ``.reason``.
"""

from __future__ import annotations


class TorrentError(Exception):
    """A torrent could not be parsed, created or verified."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BencodeError(TorrentError):
    """The data is not bencoding that we accept."""
