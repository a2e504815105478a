"""Sizes people type into a search form: '500', '20 MB', '1.5GiB', '2 TB'."""

from __future__ import annotations

import re

from holdfast.errors import InvalidInput

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
MAX_SIZE = 2**62


def parse_size(text: str) -> int | None:
    """Bytes for a size; None for an empty field. Decimal units (MB) are powers of
    1000 and binary units (MiB) powers of 1024, as in clients' displays."""
    if not text.strip():
        return None
    match = _SIZE.match(text)
    if match is None:
        raise InvalidInput("a size like 500 MB, 2 GiB or 1.5 TB", fields={"size": "invalid"})
    number, prefix, binary, _ = match.groups()
    if binary and not prefix:
        raise InvalidInput("a size like 500 MB, 2 GiB or 1.5 TB", fields={"size": "invalid"})
    base = 1024 if binary else 1000
    value = int(float(number) * base ** _POWERS[prefix.lower()])
    if value > MAX_SIZE:
        raise InvalidInput("that size is too large", fields={"size": "too large"})
    return value
