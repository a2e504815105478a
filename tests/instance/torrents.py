"""Real .torrent files for instance tests, made by libtorrent (not by holdfast)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import libtorrent as lt

FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


def make_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def make_torrent(
    root: Path,
    *,
    version: str = "hybrid",
    trackers: list[str] | None = None,
    piece_size: int = 16384,
    comment: str = "",
) -> bytes:
    """A torrent of the folder `root`, hashed by libtorrent."""
    fs = lt.file_storage()
    lt.add_files(fs, str(root))
    ct = lt.create_torrent(fs, piece_size, flags=FLAGS[version])
    for tier, url in enumerate(trackers or []):
        ct.add_tracker(url, tier)
    if comment:
        ct.set_comment(comment)
    lt.set_piece_hashes(ct, str(root.parent))
    return lt.bencode(ct.generate())


def sample_torrent(
    tmp: Path, name: str = "sample", *, version: str = "hybrid", seed: str = ""
) -> bytes:
    """A small two-file torrent whose content (and so infohash) depends on `seed`."""
    data = hashlib.sha256((name + seed).encode()).digest() * 1000
    root = make_files(
        tmp / f"{name}-{seed or 'x'}-{version}" / name,
        {"readme.txt": b"about " + name.encode() + seed.encode(), "data/values.csv": data},
    )
    return make_torrent(root, version=version)
