"""libtorrent as the judge: what libtorrent itself says about a .torrent file."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import libtorrent as lt

warnings.filterwarnings("ignore", category=DeprecationWarning, module="libtorrent")

PAD = int(lt.file_storage.flag_pad_file)


@dataclass(frozen=True)
class LibtorrentView:
    infohash_v1: str | None
    infohash_v2: str | None
    name: str
    paths: list[str]  # real files only (pad files left out, as our model does)
    sizes: list[int]
    num_pieces: int
    piece_length: int

    @property
    def file_count(self) -> int:
        return len(self.paths)

    @property
    def total_size(self) -> int:
        return sum(self.sizes)


def libtorrent_view(data: bytes) -> LibtorrentView:
    """Parse with libtorrent; raises RuntimeError if libtorrent refuses the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ti = lt.torrent_info(data)
        hashes = ti.info_hashes()
        fs = ti.files()
    real = [i for i in range(fs.num_files()) if not int(fs.file_flags(i)) & PAD]
    return LibtorrentView(
        infohash_v1=str(hashes.v1) if hashes.has_v1() else None,
        infohash_v2=str(hashes.v2) if hashes.has_v2() else None,
        name=ti.name(),
        paths=[fs.file_path(i) for i in real],
        sizes=[fs.file_size(i) for i in real],
        num_pieces=ti.num_pieces(),
        piece_length=ti.piece_length(),
    )


def libtorrent_accepts(data: bytes) -> bool:
    try:
        libtorrent_view(data)
    except RuntimeError:
        return False
    return True
