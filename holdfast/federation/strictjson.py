"""Reading JSON from peers: bounded, strict, and never silently lossy.

A proof signs the JCS canonical form of what the origin meant. Anything a lenient
parser would quietly resolve differently from the origin (a duplicated key where
"last one wins", `NaN`, a lone surrogate) is refused instead, so that what we
verify is what was signed. Received bytes are kept as they are; this only
decides whether they can be trusted to mean one thing.
"""

from __future__ import annotations

import json
from typing import Any

from holdfast.federation.errors import DocumentError

MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64


class JSONTooLarge(DocumentError):
    """More bytes than the limit."""


class JSONMalformed(DocumentError):
    """Not strict, well-formed UTF-8 JSON within the nesting limit."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONMalformed(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise JSONMalformed(f"{name} is not JSON")


def _check_depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise JSONMalformed(f"nested deeper than {limit} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def loads_strict(
    raw: bytes | str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Parse JSON from a peer; raise `JSONTooLarge` or `JSONMalformed` instead of guessing."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JSONTooLarge(f"{size} bytes of JSON exceeds the {max_bytes}-byte limit")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONMalformed(f"not UTF-8: {exc}") from exc
    else:
        text = raw
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError as exc:
        raise JSONMalformed("nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise JSONMalformed(f"not JSON: {exc}") from exc
    if text.count("{") + text.count("[") > max_depth:  # else it cannot be nested deeper
        _check_depth(value, max_depth)
    return value
