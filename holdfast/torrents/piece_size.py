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

from collections import Counter
from collections.abc import Iterable, Sequence
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

# An inner chunk read from a shard moves at most two partial pieces more than
# its bytes: pieces of an eighth of it keep that within a quarter.
_INNER_CHUNK_SHARE = 8

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


def _low_median_pow2(values: Iterable[int]) -> int | None:
    """The largest power of two within the low median of ``values`` (ignoring zeros).

    Rounding down to a power of two keeps the order, so only how many values
    fall in each power-of-two bucket is kept: memory stays small for millions.
    """
    buckets: Counter[int] = Counter()
    for value in values:
        if value > 0:
            buckets[value.bit_length() - 1] += 1
    seen = 0
    middle = (sum(buckets.values()) - 1) // 2
    for exponent in sorted(buckets):
        seen += buckets[exponent]
        if seen > middle:
            return 1 << exponent
    return None


def zarr_piece_length(
    chunk_sizes: Iterable[int],
    inner_chunk_sizes: Iterable[Iterable[int]] = (),
    *,
    sizes: Sequence[int] = (),
) -> int:
    """A piece length for a zarr store.

    ``chunk_sizes``: the files read whole (chunks of unsharded arrays). With
    every file starting on a piece boundary (v2, hybrid, or v1 with pad files)
    each chunk occupies whole pieces of its own, so reading one fetches just
    its bytes; pieces no larger than the median chunk keep the padding small.

    ``inner_chunk_sizes``: for each sharded array, the stored sizes of the
    inner chunks in its shards. A reader fetches one inner chunk from the
    middle of a shard, and it may start and end anywhere in a piece: it then
    moves its bytes plus at most two partial pieces. Pieces of at most an
    eighth of the array's median inner chunk keep that within 1.25x its bytes
    (16 KiB, the smallest piece, cannot for inner chunks under 128 KiB).

    The result is the smallest of these (a power of two), raised if needed so
    that files of ``sizes`` need at most about a million pieces.
    """
    bounds: list[int] = []
    whole = _low_median_pow2(chunk_sizes)
    if whole is not None:
        bounds.append(whole)
    for inner in inner_chunk_sizes:
        median = _low_median_pow2(inner)
        if median is not None:
            bounds.append(max(median // _INNER_CHUNK_SHARE, 1))
    length = _clamp(min(bounds)) if bounds else MIN_PIECE_LENGTH
    while length < MAX_AUTO_PIECE_LENGTH and aligned_pieces(sizes, length) > _MAX_PIECES:
        length *= 2
    return length
