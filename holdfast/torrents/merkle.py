"""BEP 52 merkle trees: per-file SHA-256 trees over 16 KiB blocks."""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha256

__all__ = [
    "BLOCK_SIZE",
    "merkle_root",
    "pad_hash",
    "piece_layer_and_root",
    "root_from_piece_layer",
]

BLOCK_SIZE = 16 * 1024
_ZERO = bytes(32)


@lru_cache(maxsize=64)
def pad_hash(height: int) -> bytes:
    """Root of a full subtree of ``2**height`` all-zero leaves."""
    h = _ZERO
    for _ in range(height):
        h = sha256(h + h).digest()
    return h


def merkle_root(leaves: list[bytes], pad: bytes = _ZERO, width: int | None = None) -> bytes:
    """Root of the tree over ``leaves`` padded with ``pad`` to ``width`` (a power of two).

    ``width`` defaults to the next power of two of ``len(leaves)``. Padding
    subtrees are computed once per level, and only for levels that need one
    (a full piece needs none).
    """
    n = len(leaves)
    if width is None:
        width = 1 << max(n - 1, 0).bit_length()
    if n == 0:
        leaves = [pad]
    level = leaves
    # the root of a padding subtree as high as the current level
    level_pad, pad_height, height = pad, 0, 0
    while width > 1:
        if len(level) % 2:
            while pad_height < height:
                level_pad = sha256(level_pad + level_pad).digest()
                pad_height += 1
            level = [*level, level_pad]
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        width //= 2
        height += 1
    return level[0]


def piece_layer_and_root(block_hashes: list[bytes], piece_length: int) -> tuple[bytes, bytes]:
    """(piece layer, pieces root) of a file from its 16 KiB block hashes.

    The piece layer is empty when the file fits in one piece (BEP 52 stores no
    layer for such files).
    """
    per_piece = piece_length // BLOCK_SIZE
    if len(block_hashes) <= per_piece:
        return b"", merkle_root(block_hashes)
    pieces = [
        merkle_root(block_hashes[i : i + per_piece], width=per_piece)
        for i in range(0, len(block_hashes), per_piece)
    ]
    height = per_piece.bit_length() - 1
    return b"".join(pieces), merkle_root(pieces, pad=pad_hash(height))


def root_from_piece_layer(layer: bytes, piece_length: int) -> bytes:
    """The pieces root implied by a file's piece layer (concatenated piece hashes)."""
    pieces = [layer[i : i + 32] for i in range(0, len(layer), 32)]
    height = (piece_length // BLOCK_SIZE).bit_length() - 1
    return merkle_root(pieces, pad=pad_hash(height))
