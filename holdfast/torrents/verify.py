"""Checking data on disk against a torrent: which pieces, and so which files, are bad."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from holdfast.torrents.errors import TorrentError
from holdfast.torrents.hashing import ProgressCallback, Stream, StreamFile, file_root, hash_stream
from holdfast.torrents.model import Torrent

__all__ = ["VerifyResult", "data_root", "verify_data"]


@dataclass(slots=True)
class VerifyResult:
    """What :func:`verify_data` found."""

    #: the folder the torrent's paths were resolved against
    save_path: Path
    #: piece indices (libtorrent's numbering) whose hash does not match
    bad_pieces: list[int] = field(default_factory=list)
    #: paths of files that are missing or have the wrong size
    missing_files: list[str] = field(default_factory=list)
    #: paths of files with at least one bad byte (missing files included)
    bad_files: list[str] = field(default_factory=list)
    checked_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad_pieces and not self.bad_files


def data_root(torrent: Torrent, data_path: str | os.PathLike[str]) -> Path:
    """The download folder for ``torrent`` given where its data is.

    ``data_path`` may be the download folder itself (holding ``torrent.name``),
    the torrent's own folder, or, for a single-file torrent, the file.
    """
    path = Path(data_path)
    first = torrent.files[0].path if torrent.file_count else torrent.name
    top = first.split("/", 1)[0]
    if (path / top).exists():
        return path
    if path.name == top and path.exists():
        return path.parent
    raise TorrentError(f"cannot find {top!r} in or at {path}")


def _inside(save_path: Path, real_root: Path, relative: str) -> Path | None:
    """The file for ``relative``, or None if it is not a regular file inside the folder.

    Torrent paths are cleaned when parsed; a folder on disk that is a symlink
    to somewhere else is still refused, so verifying never reads outside.
    """
    parts = relative.split("/")
    if ".." in parts or "" in parts:
        raise TorrentError(f"path {relative!r} leaves the download folder")
    target = save_path.joinpath(*parts)
    try:
        st = target.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if not target.parent.resolve().is_relative_to(real_root):
        return None
    return target


def verify_data(
    torrent: Torrent,
    data_path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    processes: bool | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Hash the data at ``data_path`` and compare it with the torrent's hashes.

    v1 pieces are checked for v1 and hybrid torrents, v2 merkle trees for v2
    and hybrid torrents (a hybrid is checked both ways: a file made to match
    one set of hashes but not the other is caught).
    """
    save_path = data_root(torrent, data_path)
    result = VerifyResult(save_path=save_path)
    files = torrent.files
    stream_files: list[StreamFile] = []
    missing: set[int] = set()
    real_root = save_path.resolve()
    for i, f in enumerate(files):
        target = _inside(save_path, real_root, f.path)
        if target is None or target.stat().st_size != f.size:
            missing.add(i)
            result.missing_files.append(f.path)
            stream_files.append(StreamFile(None, f.size))
        else:
            stream_files.append(StreamFile(target, f.size))

    piece_length = torrent.piece_length
    layout = torrent.stream_layout()
    layout_offsets = [offset for offset, _ in layout]
    # the first file may sit after padding (a torrent that starts with a pad file)
    lead = layout_offsets[0] if layout_offsets else 0
    if lead:
        stream_files.insert(0, StreamFile(None, 0))
    pads = ([lead] if lead else []) + [pad for _, pad in layout]
    stream = Stream(stream_files, pads, piece_length)
    do_v1 = torrent.pieces is not None
    do_v2 = torrent.infohash_v2 is not None
    hashes = hash_stream(
        stream, v1=do_v1, v2=do_v2, threads=threads, processes=processes, progress=progress
    )
    shift = 1 if lead else 0
    result.checked_bytes = stream.data_size

    bad: set[int] = set()
    if do_v1 and torrent.pieces is not None:
        expected = torrent.pieces
        for index, digest in enumerate(hashes.v1):
            if expected[index * 20 : index * 20 + 20] != digest:
                bad.add(index)
    if do_v2:
        for i, f in enumerate(files):
            if not f.size:
                continue
            first_piece = layout_offsets[i] // piece_length
            pieces = hashes.v2.get(i + shift, [])
            root, _ = file_root(pieces, f.size, piece_length)
            if root == f.pieces_root:
                continue
            layer = torrent.piece_layers.get(f.pieces_root or b"")
            if layer and f.size > piece_length:
                # the layer names the bad pieces; without one, the whole file is bad
                for k, digest in enumerate(pieces):
                    if layer[k * 32 : k * 32 + 32] != digest:
                        bad.add(first_piece + k)
            else:
                bad.update(range(first_piece, first_piece + -(-f.size // piece_length)))
    result.bad_pieces = sorted(bad)
    bad_files = set(missing)
    for piece in result.bad_pieces:
        bad_files.update(torrent.files_in_piece(piece))
    result.bad_files = [files[i].path for i in sorted(bad_files)]
    return result
