"""Bencoding for untrusted input, over a compiled codec (fastbencode).

Two decoders:

* :func:`decode` is strict: only canonical bencoding (sorted, unique dict keys;
  integers and string lengths without leading zeros or ``-0``; nothing after
  the value) within a size and a nesting limit. Canonical input re-encodes to
  the same bytes, so a value's bytes can be located without a second parser.
  This is the compiled fast path.
* :func:`decode_tolerant` accepts what libtorrent's ``bdecode`` accepts
  (unsorted or duplicate keys, leading zeros, bytes after the value) and
  reports every such irregularity with its offset, plus the byte span of each
  top-level value. It is pure Python with a token limit, so its time and
  memory stay bounded; it runs only when the strict decoder refuses.

Every failure raises :class:`BencodeError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastbencode import _bencode_rs as _rs

from holdfast.torrents.errors import BencodeError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_TOKENS",
    "BencodeError",
    "Irregularity",
    "TolerantResult",
    "decode",
    "decode_tolerant",
    "encode",
    "encoded_length",
]

#: Largest input either decoder looks at (libtorrent refuses .torrent files over 80 MB).
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: Lists and dicts nested deeper than this are refused. libtorrent refuses the
#: 100th level, so 99 open containers is the most both accept.
DEFAULT_MAX_DEPTH = 99
#: Values (strings, integers, lists, dicts) the tolerant decoder will read.
DEFAULT_MAX_TOKENS = 3_000_000

# libtorrent reads at most 20 digits of an integer and refuses longer ones.
_MAX_INT_DIGITS = 20
_LONG_INT = re.compile(rb"i-?[0-9]{21}")
_INT = re.compile(rb"i(-?)([0-9]+)e")
_DIGITS = re.compile(rb"[0-9]+")
_INT64_MAX = (1 << 63) - 1


def encode(obj: Any) -> bytes:
    """Bencode ``obj`` canonically (dict keys sorted).

    Accepts dicts with bytes or str keys, lists and tuples, ints (and bools),
    bytes and str (encoded as UTF-8).
    """
    try:
        return bytes(_rs.bencode(obj))
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return bytes(_rs.bencode(_to_bytes(obj, 0)))
    except (TypeError, ValueError, RecursionError) as exc:
        raise BencodeError(f"cannot bencode this value: {exc}") from None


def encoded_length(obj: Any) -> int:
    """Length in bytes of ``encode(obj)``."""
    return len(encode(obj))


def _to_bytes(obj: Any, depth: int) -> Any:
    if depth > 10_000:
        raise ValueError("nesting too deep")
    if isinstance(obj, str):
        return obj.encode("utf-8")
    if isinstance(obj, dict):
        out: dict[bytes, Any] = {}
        for key, value in obj.items():
            bkey = key.encode("utf-8") if isinstance(key, str) else key
            if not isinstance(bkey, bytes):
                raise TypeError(f"dict key {key!r} is not bytes or str")
            if bkey in out:
                raise ValueError(f"duplicate dict key {bkey!r}")
            out[bkey] = _to_bytes(value, depth + 1)
        return out
    if isinstance(obj, list | tuple):
        return [_to_bytes(item, depth + 1) for item in obj]
    if isinstance(obj, bytearray | memoryview):
        return bytes(obj)
    return obj


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise BencodeError(f"expected bytes to decode, got {type(data).__name__}")


def decode(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Decode canonical bencoding; anything else raises :class:`BencodeError`.

    Strings decode to ``bytes`` and dict keys are ``bytes``.
    """
    data = _as_bytes(data)
    if len(data) > max_size:
        raise BencodeError(f"data is {len(data)} bytes, more than the limit of {max_size}")
    if not data:
        raise BencodeError("empty input")
    try:
        value = _rs.bdecode(data, max_depth=max_depth)
    except RecursionError:
        raise BencodeError(f"lists and dicts are nested deeper than {max_depth} levels") from None
    except Exception:  # the compiled codec raises several kinds; locate below
        _raise_precise(data, max_depth)
        raise BencodeError("invalid bencoding") from None
    # The compiled codec reads integers of any length; we (like libtorrent)
    # refuse more than 20 digits. A match may sit inside a string, so confirm.
    if _LONG_INT.search(data) is not None:
        decode_tolerant(data, max_size=max_size, max_depth=max_depth)
    return value


def _raise_precise(data: bytes, max_depth: int) -> None:
    """Re-read refused input with the tolerant decoder to name the fault and its offset."""
    result = decode_tolerant(data, max_size=len(data), max_depth=max_depth)
    if result.irregularities:
        first = result.irregularities[0]
        raise BencodeError(f"not canonical bencoding: {first.message} at byte {first.offset}")
    if result.end != len(data):
        raise BencodeError(f"unexpected data after the end of the value at byte {result.end}")


@dataclass(frozen=True, slots=True)
class Irregularity:
    """A departure from canonical bencoding that libtorrent still reads."""

    offset: int
    message: str
    #: libtorrent refuses this inside the info dict of a v2 (or hybrid) torrent
    refused_in_v2: bool = True


@dataclass(slots=True)
class TolerantResult:
    value: Any
    #: offset just past the value; bytes after it are ignored
    end: int
    #: top-level dict key -> (start, end) byte span of its value (first occurrence)
    spans: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    irregularities: list[Irregularity] = field(default_factory=list)


class _Frame:
    __slots__ = ("container", "is_dict", "key", "last_key", "start")

    def __init__(self, container: Any, is_dict: bool, start: int) -> None:
        self.container = container
        self.is_dict = is_dict
        self.start = start
        self.key: bytes | None = None
        self.last_key: bytes | None = None


def decode_tolerant(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> TolerantResult:
    """Decode bencoding as leniently as libtorrent does, noting each irregularity.

    For duplicate dict keys the first value wins (libtorrent's lookup order).
    """
    data = _as_bytes(data)
    size = len(data)
    if size > max_size:
        raise BencodeError(f"data is {size} bytes, more than the limit of {max_size}")
    if not data:
        raise BencodeError("empty input")
    result = TolerantResult(value=None, end=0)
    irregular = result.irregularities
    stack: list[_Frame] = []
    pos = 0
    tokens = 0
    while True:
        if pos >= size:
            raise BencodeError(f"unexpected end of data at byte {pos}")
        if len(stack) > max_depth:
            raise BencodeError(f"lists and dicts are nested deeper than {max_depth} levels")
        tokens += 1
        if tokens > max_tokens:
            raise BencodeError(f"more than {max_tokens} values")
        start = pos
        c = data[pos]
        top = stack[-1] if stack else None
        if top is not None and top.is_dict and top.key is None and not (48 <= c <= 57 or c == 101):
            raise BencodeError(f"dictionary key at byte {pos} is not a string")
        value: Any
        if c == 100:  # d
            stack.append(_Frame({}, True, pos))
            pos += 1
            continue
        if c == 108:  # l
            stack.append(_Frame([], False, pos))
            pos += 1
            continue
        if c == 101:  # e
            if top is None:
                raise BencodeError(f"unexpected end marker at byte {pos}")
            if top.is_dict and top.key is not None:
                raise BencodeError(f"dictionary key without a value before byte {pos}")
            stack.pop()
            pos += 1
            value = top.container
            start = top.start
        elif c == 105:  # i
            m = _INT.match(data, pos)
            if m is None:
                raise BencodeError(f"malformed integer at byte {pos}")
            negative, digits = m.group(1), m.group(2)
            if len(digits) > _MAX_INT_DIGITS:
                raise BencodeError(f"integer at byte {pos} has more than {_MAX_INT_DIGITS} digits")
            if digits[0] == 48 and len(digits) > 1:
                irregular.append(Irregularity(pos, "leading zero in integer", not negative))
            elif negative and digits == b"0":
                irregular.append(Irregularity(pos, "negative zero", False))
            value = int(digits)
            if negative:
                value = -value
            pos = m.end()
        elif 48 <= c <= 57:
            m = _DIGITS.match(data, pos)
            if m is None:  # pragma: no cover - c is a digit
                raise BencodeError(f"malformed string length at byte {pos}")
            digits = m.group()
            colon = m.end()
            if colon >= size:
                raise BencodeError(f"unexpected end of data in string length at byte {pos}")
            if data[colon] != 58:
                raise BencodeError(f"expected ':' after string length at byte {colon}")
            significant = digits.lstrip(b"0")
            if len(significant) > 19 or int(significant or b"0") > _INT64_MAX:
                raise BencodeError(f"string length at byte {pos} overflows")
            length = int(significant or b"0")
            if digits[0] == 48 and len(digits) > 1:
                irregular.append(Irregularity(pos, "leading zero in string length"))
            if length > size - colon - 1:
                raise BencodeError(f"string at byte {pos} runs past the end of the data")
            pos = colon + 1 + length
            value = data[colon + 1 : pos]
        else:
            raise BencodeError(f"unexpected byte {bytes([c])!r} at byte {pos}")

        if not stack:
            result.value = value
            result.end = pos
            return result
        parent = stack[-1]
        if not parent.is_dict:
            parent.container.append(value)
        elif parent.key is None:
            last = parent.last_key
            if last is not None:
                if value == last:
                    irregular.append(Irregularity(start, "duplicate dictionary key"))
                elif value < last:
                    irregular.append(Irregularity(start, "unsorted dictionary key"))
            parent.key = value
            parent.last_key = value
        else:
            key = parent.key
            parent.key = None
            if key not in parent.container:
                parent.container[key] = value
                if len(stack) == 1:
                    result.spans[key] = (start, pos)
