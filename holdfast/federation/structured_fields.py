"""The subset of RFC 8941 (Structured Field Values) that RFC 9421 signatures need.

Parses Dictionaries of Items and Inner Lists with Parameters, and serialises Inner
Lists back, because the `@signature-params` line of a signature base is the
*serialised* signature parameters. Inputs come from peers, so every size is
bounded and duplicate dictionary keys are refused rather than silently merged.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from decimal import Decimal

MAX_FIELD_CHARS = 8192
MAX_MEMBERS = 32
MAX_INNER_ITEMS = 64
MAX_PARAMS = 32


class StructuredFieldError(ValueError):
    """A field value that is not a valid (or not a small enough) structured field."""


class Token(str):
    """An sf-token, kept distinct from an sf-string so it serialises unquoted."""

    __slots__ = ()


BareItem = int | Decimal | str | Token | bytes | bool


@dataclass(slots=True)
class Item:
    value: BareItem
    params: dict[str, BareItem] = field(default_factory=dict)


@dataclass(slots=True)
class InnerList:
    items: list[Item]
    params: dict[str, BareItem] = field(default_factory=dict)


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FIELD_CHARS:
            raise StructuredFieldError(f"field longer than {MAX_FIELD_CHARS} characters")
        if not text.isascii():
            raise StructuredFieldError("structured fields are ASCII")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise StructuredFieldError(f"expected {what} at position {self.pos}")
        self.pos = found.end()
        return found.group(0)

    def dictionary(self) -> dict[str, Item | InnerList]:
        members: dict[str, Item | InnerList] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.match(_KEY, "a key")
            if key in members:
                raise StructuredFieldError(f"duplicate dictionary key {key!r}")
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.item_or_inner_list()
            else:
                members[key] = Item(True, self.parameters())
            if len(members) > MAX_MEMBERS:
                raise StructuredFieldError(f"more than {MAX_MEMBERS} dictionary members")
            self.skip(" \t")
            if self.pos >= len(self.text):
                break
            if self.peek() != ",":
                raise StructuredFieldError(f"expected ',' at position {self.pos}")
            self.pos += 1
            self.skip(" \t")
            if self.pos >= len(self.text):
                raise StructuredFieldError("trailing comma")
        return members

    def item_or_inner_list(self) -> Item | InnerList:
        if self.peek() == "(":
            return self.inner_list()
        return self.item()

    def inner_list(self) -> InnerList:
        self.pos += 1
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(items, self.parameters())
            items.append(self.item())
            if len(items) > MAX_INNER_ITEMS:
                raise StructuredFieldError(f"more than {MAX_INNER_ITEMS} inner-list items")
            if self.peek() not in (" ", ")"):
                raise StructuredFieldError(f"expected ' ' or ')' at position {self.pos}")
        raise StructuredFieldError("unterminated inner list")

    def item(self) -> Item:
        value = self.bare_item()
        return Item(value, self.parameters())

    def parameters(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(_KEY, "a parameter key")
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            # RFC 8941 lets a later parameter overwrite an earlier one; a
            # signature with two `created` values is better refused.
            if key in params:
                raise StructuredFieldError(f"duplicate parameter {key!r}")
            params[key] = value
            if len(params) > MAX_PARAMS:
                raise StructuredFieldError(f"more than {MAX_PARAMS} parameters")
        return params

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char == "*" or char.isalpha():
            return Token(self.match(_TOKEN, "a token"))
        raise StructuredFieldError(f"unexpected {char!r} at position {self.pos}")

    def number(self) -> int | Decimal:
        text = self.match(_NUMBER, "a number")
        integer, _, fraction = text.lstrip("-").partition(".")
        if "." in text:
            if len(integer) > 12 or not 1 <= len(fraction) <= 3:
                raise StructuredFieldError("decimal out of range")
            return Decimal(text)
        if len(integer) > 15:
            raise StructuredFieldError("integer out of range")
        return int(text)

    def string(self) -> str:
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise StructuredFieldError("bad escape in string")
                chars.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                raise StructuredFieldError("control character in string")
            else:
                chars.append(char)
        raise StructuredFieldError("unterminated string")

    def byte_sequence(self) -> bytes:
        self.pos += 1
        encoded = self.match(_BASE64, "base64")
        if self.peek() != ":":
            raise StructuredFieldError("unterminated byte sequence")
        self.pos += 1
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StructuredFieldError(f"bad base64: {exc}") from exc

    def boolean(self) -> bool:
        self.pos += 1
        char = self.peek()
        if char not in ("0", "1"):
            raise StructuredFieldError("bad boolean")
        self.pos += 1
        return char == "1"


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """Parse a Dictionary field value (RFC 8941 section 4.2.2), strictly."""
    parser = _Parser(text)
    members = parser.dictionary()
    return members


def serialize_bare_item(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) >= 10**15:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        text = f"{value.quantize(Decimal('0.001')):f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        if not _TOKEN.fullmatch(value):
            raise StructuredFieldError(f"not a token: {value!r}")
        return str(value)
    if not all(" " <= char <= "~" for char in value):
        raise StructuredFieldError("string with characters outside printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: dict[str, BareItem]) -> str:
    parts: list[str] = []
    for key, value in params.items():
        if not _KEY.fullmatch(key):
            raise StructuredFieldError(f"not a key: {key!r}")
        parts.append(f";{key}" if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(parts)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    return (
        "("
        + " ".join(serialize_item(item) for item in inner.items)
        + ")"
        + serialize_params(inner.params)
    )
