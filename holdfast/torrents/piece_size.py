"""Choosing a piece length.

A torrent wants few enough pieces to keep its metadata small and many enough
that a peer can share data early. In v2 and hybrid torrents every file starts
on a piece boundary, so each file that does not end on one is padded: with
many small files a large piece length multiplies the bytes to hash (hybrid
torrents hash the padding) and, for clients that write pad files, the bytes
on disk. :func:`choose_piece_length` starts from the size-based choice and
halves it while the padding is a noticeable share of the data.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "MAX_AUTO_PIECE_LENGTH",
    "MIN_PIECE_LENGTH",
    "choose_piece_length",
    "padding_bytes",
    "zarr_piece_length",
]

MIN_PIECE_LENGTH = 16 * 1024
MAX_AUTO_PIECE_LENGTH = 16 * 1024 * 1024
# Aim for about this many pieces when file sizes do not argue otherwise.
_TARGET_PIECES = 1500
# Keep padding below this share of the real data where possible.
_MAX_PADDING_SHARE = 0.05
# Never shrink pieces so far that the torrent needs more than this many.
_MAX_PIECES = 1 << 20

_ZARR_METADATA = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})


def _pow2_at_most(n: int) -> int:
    return 1 << (max(n, 1).bit_length() - 1)


def _clamp(n: int) -> int:
    return max(MIN_PIECE_LENGTH, min(MAX_AUTO_PIECE_LENGTH, n))


def padding_bytes(sizes: Sequence[int], piece_length: int) -> int:
    """Bytes of padding that aligning every file but the last to pieces adds."""
    pad = 0
    for size in sizes[:-1]:
        rem = size % piece_length
        if rem:
            pad += piece_length - rem
    return pad


def aligned_pieces(sizes: Sequence[int], piece_length: int) -> int:
    return sum(-(-s // piece_length) for s in sizes)


def choose_piece_length(sizes: Sequence[int], version: Literal["v1", "v2", "hybrid"]) -> int:
    """A power-of-two piece length for files of these sizes (in torrent order)."""
    total = sum(sizes)
    length = _clamp(_pow2_at_most(max(total // _TARGET_PIECES, 1) * 2 - 1))
    if version == "v1":
        return length
    # Shrink while padding is a noticeable share of the data, as long as the
    # piece count stays reasonable.
    while length > MIN_PIECE_LENGTH:
        pad = padding_bytes(sizes, length)
        if pad <= _MAX_PADDING_SHARE * max(total, 1):
            break
        smaller = length // 2
        if aligned_pieces(sizes, smaller) > _MAX_PIECES:
            break
        length = smaller
    return length


def is_zarr_chunk(components: Sequence[str]) -> bool:
    """True for a file of a zarr store that holds array data (a chunk or a shard)."""
    if not components:
        return False
    name = components[-1]
    return name not in _ZARR_METADATA and not name.startswith(".")


def zarr_piece_length(chunk_sizes: Sequence[int]) -> int:
    """A piece length for a zarr store: the largest power of two within the median chunk.

    With every file starting on a piece boundary (v2, hybrid, or v1 with pad
    files), each chunk or shard file then occupies whole pieces of its own, and
    most chunks fill at least one piece, so reading one chunk fetches only its
    pieces and little padding.
    """
    sizes = [s for s in chunk_sizes if s > 0]
    if not sizes:
        return MIN_PIECE_LENGTH
    median = int(statistics.median_low(sizes))
    return _clamp(_pow2_at_most(median))
