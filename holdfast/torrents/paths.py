"""File names from torrents, made safe the way libtorrent makes them safe.

A path in a torrent is a list of components chosen by whoever made the file.
Each component is cleaned exactly as libtorrent's
``sanitize_append_path_element`` does on POSIX, so the paths we show are the
paths a client writes:

* ``/``, ``\\``, NUL and invisible format characters (direction overrides,
  zero-width characters) are dropped;
* other control characters (C0, DEL, C1) and invalid UTF-8 become ``_``;
* a component that is empty, ``.`` or ``..``, or that cleans to nothing,
  becomes ``_`` (:func:`sanitize_component` returns None for these, and a
  torrent's *name* is then replaced by its infohash);
* a component longer than 240 bytes is cut, keeping a short extension.

So no cleaned path is absolute, none contains ``..``, and none has an empty
component: a path always stays inside the download folder.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["fast_join", "join_clean", "sanitize_component"]

# Invisible format characters (bidirectional marks and overrides, zero-width
# characters, the byte-order mark) are dropped: they can disguise a name.
_INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# Characters that need the slow path: separators, controls and invisibles.
_NEEDS_CARE = re.compile(f"[\x00-\x1f\x7f-\x9f/\\\\{_INVISIBLE}]")
_DROPPED = frozenset(
    {0, 0x2F, 0x5C, 0x061C, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F)}
    | {*range(0x2060, 0x2065), *range(0x2066, 0x206A)}
)
_MAX_COMPONENT = 240
# A run of dropped characters, as complete UTF-8 sequences: skipped in one step
# (possessive, so the regex keeps no backtracking state), so a huge component
# made of them costs no Python-level loop.
_DROPPED_RUN = re.compile(
    rb"(?:[/\\\x00]|\xd8\x9c|\xef\xbb\xbf|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa0-\xa4\xa6-\xa9])++"
)


def sanitize_component(raw: bytes) -> str | None:
    """The cleaned form of one path component, or None if nothing usable is left."""
    if len(raw) <= _MAX_COMPONENT and raw not in (b"", b".", b".."):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if _NEEDS_CARE.search(text) is None:
                return text
    if raw in (b"", b"."):
        return None
    return _sanitize_slow(raw)


def _utf8_codepoint(data: bytes, i: int) -> tuple[int, int]:
    """libtorrent's ``parse_utf8_codepoint``: (codepoint or -1, bytes consumed)."""
    b = data[i]
    if b < 0x80:
        return b, 1
    if b >> 5 == 0b110:
        length = 2
    elif b >> 4 == 0b1110:
        length = 3
    elif b >> 3 == 0b11110:
        length = 4
    elif b >> 2 == 0b111110:
        return -1, 5
    else:
        return -1, 1
    if length > len(data) - i:
        return -1, len(data) - i
    ch = b & (0b11111 if length == 2 else 0b1111 if length == 3 else 0b111)
    for k in range(1, length):
        cont = data[i + k]
        if not 0x80 <= cont <= 0xBF:
            return -1, length
        ch = (ch << 6) | (cont & 0x3F)
    if ch < (0x80, 0x800, 0x10000)[length - 2] or ch > 0x10FFFF:
        return -1, length
    return ch, length


def _sanitize_slow(raw: bytes) -> str | None:
    out: list[str] = []
    added = 0
    dots = 0
    found_extension = False
    i = 0
    n = len(raw)
    while i < n:
        run = _DROPPED_RUN.match(raw, i)
        if run is not None:
            i = run.end()
            continue
        cp, seq_len = _utf8_codepoint(raw, i)
        if cp >= 0 and cp in _DROPPED:
            i += seq_len
            continue
        if cp < 32 or 0x7F <= cp <= 0x9F or 0xD800 <= cp <= 0xDFFF:
            out.append("_")
            added += 1
            i += seq_len
            continue
        out.append(chr(cp))
        if cp == 0x2E:
            dots += 1
        added += seq_len
        if added >= _MAX_COMPONENT and not found_extension:
            dot = -1
            for j in range(n - 1, max(n - 10, i), -1):
                if raw[j] == 0x2E:
                    dot = j
                    break
            if dot == -1:
                break
            found_extension = True
            i = dot
            continue
        i += seq_len
    if added == dots and added <= 2:
        return None
    return "".join(out)


_NEEDS_CARE_JOINED = re.compile(f"[\x00-\x1f\x7f-\x9f\\\\{_INVISIBLE}]")


def fast_join(components: list[Any]) -> str | None:
    """``/``-joined components when none needs cleaning, else None (use :func:`join_clean`).

    Checks the whole path at once, with no per-component Python work.
    """
    try:
        raw = b"/".join(components)
    except TypeError:
        return None
    if (
        not components
        or raw.count(b"/") != len(components) - 1
        or b"" in components
        or b"." in components
        or b".." in components
        or max(map(len, components)) > _MAX_COMPONENT
    ):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _NEEDS_CARE_JOINED.search(text) is None else None


def join_clean(components: list[bytes]) -> str:
    """Clean each component (an unusable one becomes ``_``) and join with ``/``."""
    return "/".join([c if c is not None else "_" for c in map(sanitize_component, components)])
