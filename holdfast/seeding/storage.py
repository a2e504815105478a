"""Where an upload's data lives in the storage folder, and safe paths inside it."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
RESUME_FOLDER = ".resume"


class UnsafePath(Exception):
    """A path would leave the upload's folder (`..`, absolute, or a symlink outside)."""


def upload_key(infohash_v1: str | None, infohash_v2: str | None) -> str:
    """The folder name of an upload: its v2 infohash when it has one, else its v1 one."""
    key = (infohash_v2 or infohash_v1 or "").lower()
    if not _HEX.match(key):
        raise ValueError(f"not an infohash: {key!r}")
    return key


def upload_folder(storage: Path, key: str) -> Path:
    """libtorrent's save path for the upload: `<storage>/<infohash>`."""
    if not _HEX.match(key):
        raise ValueError(f"not an infohash: {key!r}")
    return storage / key


def resume_file(storage: Path, key: str) -> Path:
    return storage / RESUME_FOLDER / f"{upload_folder(storage, key).name}.resume"


def relative_parts(path: str) -> tuple[str, ...]:
    """The parts of a torrent-relative path; UnsafePath for anything that could escape."""
    if not path or "\x00" in path or "\\" in path:
        raise UnsafePath("empty or malformed path")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise UnsafePath("absolute path")
    parts = pure.parts
    if any(p in ("", ".", "..") for p in parts) or any(p != p.strip("\r\n") for p in parts):
        raise UnsafePath("path with . or .. parts")
    return parts


def resolve_inside(folder: Path, path: str) -> Path:
    """`folder/path` with symlinks resolved; UnsafePath unless it is still inside `folder`."""
    root = folder.resolve()
    target = root.joinpath(*relative_parts(path)).resolve()
    if not target.is_relative_to(root) or target == root:
        raise UnsafePath("path leaves the upload's folder")
    return target
