"""Finding the files of a dataset on disk: order, junk, and names a torrent can hold."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from holdfast.torrents.errors import TorrentError
from holdfast.torrents.paths import sanitize_component

__all__ = ["JUNK_DIRS", "JUNK_FILES", "SourceFile", "is_junk", "list_source_files"]

#: Files operating systems and editors leave behind, left out unless asked for.
JUNK_FILES: tuple[str, ...] = (
    ".DS_Store",
    "._*",  # AppleDouble resource forks
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "*.swp",
    "*.swo",
    "*.swx",  # vim
    ".*.swp",
    "*~",  # editor backups
    ".#*",  # emacs locks
    "#*#",  # emacs autosaves
    ".directory",  # KDE
)
#: Folders of the same kind, left out with everything in them.
JUNK_DIRS: tuple[str, ...] = (
    ".Spotlight-V100",
    ".Trashes",
    ".fseventsd",
    ".TemporaryItems",
    "__MACOSX",
    "$RECYCLE.BIN",
    "System Volume Information",
)


_JUNK_FILE = re.compile("|".join(fnmatch.translate(p) for p in JUNK_FILES))
_JUNK_DIR = re.compile("|".join(fnmatch.translate(p) for p in JUNK_DIRS))


def is_junk(name: str, *, directory: bool = False) -> bool:
    return (_JUNK_DIR if directory else _JUNK_FILE).match(name) is not None


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A regular file to put in a torrent."""

    #: path components below the torrent's root (empty for a single-file torrent)
    components: tuple[str, ...]
    #: where the file is on disk
    path: str
    size: int

    @property
    def key(self) -> tuple[bytes, ...]:
        """Sort key: BEP 52 orders the file tree by the bytes of each component."""
        return tuple(c.encode("utf-8") for c in self.components)


def _check_name(name: str, where: str | Path) -> None:
    try:
        raw = os.fsencode(name)
        raw.decode("utf-8")
    except UnicodeError:
        raise TorrentError(f"file name is not valid UTF-8: {where}") from None
    if sanitize_component(raw) != name:
        raise TorrentError(
            f"file name {name!r} cannot be stored in a torrent unchanged "
            f"(control characters, backslashes or a reserved name): {where}"
        )


def list_source_files(root: Path, *, include_junk: bool = False) -> list[SourceFile]:
    """Regular files under ``root`` in torrent order.

    Symlinks and special files are skipped (a torrent must not make a client
    read outside the dataset). Names that a client would rewrite are refused,
    so the files in the torrent are exactly the files on disk.
    """
    try:
        st = root.stat()
    except OSError as exc:
        raise TorrentError(f"cannot read {root}: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode):
        _check_name(root.name, root)
        return [SourceFile((), str(root), st.st_size)]
    if not stat.S_ISDIR(st.st_mode):
        raise TorrentError(f"{root} is neither a file nor a folder")
    _check_name(root.name or root.resolve().name, root)

    found: list[SourceFile] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(str(root), ())]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise TorrentError(f"cannot list {folder}: {exc.strerror}") from None
        for entry in entries:
            name = entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if not include_junk and is_junk(name, directory=True):
                    continue
                _check_name(name, entry.path)
                stack.append((entry.path, (*prefix, name)))
            elif entry.is_file(follow_symlinks=False):
                if not include_junk and is_junk(name):
                    continue
                _check_name(name, entry.path)
                size = entry.stat(follow_symlinks=False).st_size
                found.append(SourceFile((*prefix, name), entry.path, size))
    found.sort(key=lambda f: f.key)
    return found
