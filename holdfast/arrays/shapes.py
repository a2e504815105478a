"""Array specifications as written in holdfast.yaml, and their numpydantic equivalents.

A shape is a list with one item per dimension (numpydantic's notation, written as YAML):

    shape: ["* time", 512, "3-4 channel", "..."]

- an integer, or a string "512 y": exactly that length (optionally named);
- "*" or "* time": any length;
- "2-10", "2-*", "*-10": a length in that inclusive range;
- "..." as the last item: any number of further dimensions of any length.

A dtype is a numpy dtype name (uint16, float32, bool, str, ...) or a family that any of
its members satisfies (integer, signed_integer, unsigned_integer, float, complex, number).

This module has no numpy or numpydantic import at module level: parsing and display are
used by the metadata validator, which must run without the arrays extra's heavier parts
being imported; only `to_numpydantic` needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DIMENSION_PATTERN = re.compile(
    r"^\s*(?:(?P<ellipsis>\.\.\.)"
    r"|(?:(?P<any>\*)|(?P<lo>[0-9]+)-(?P<hi>[0-9]+|\*)|\*-(?P<below>[0-9]+)|(?P<exact>[0-9]+))"
    r"(?:\s+(?P<label>[a-z_][a-z0-9_]*))?)\s*$"
)

DTYPE_NAMES: tuple[str, ...] = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "str",
    "bytes",
    "datetime64",
    "timedelta64",
    "object",
)
DTYPE_FAMILIES: tuple[str, ...] = (
    "integer",
    "signed_integer",
    "unsigned_integer",
    "float",
    "complex",
    "number",
)


class ShapeSpecError(ValueError):
    """A shape item that is not a dimension; the message says why."""


@dataclass(frozen=True, slots=True)
class Dimension:
    """One dimension of a declared shape. `minimum`/`maximum` None means unbounded."""

    minimum: int | None = None
    maximum: int | None = None
    label: str | None = None
    rest: bool = False  # "...": any number of further dimensions

    def __str__(self) -> str:
        if self.rest:
            return "..."
        if self.minimum is not None and self.minimum == self.maximum:
            size = str(self.minimum)
        elif self.minimum is None and self.maximum is None:
            size = "*"
        else:
            lo = "*" if self.minimum is None else str(self.minimum)
            hi = "*" if self.maximum is None else str(self.maximum)
            size = f"{lo}-{hi}"
        return f"{size} {self.label}" if self.label else size

    def accepts(self, size: int) -> bool:
        if self.minimum is not None and size < self.minimum:
            return False
        return not (self.maximum is not None and size > self.maximum)


def parse_dimension(item: object) -> Dimension:
    """One item of a `shape` list: an integer or a string such as "* time" or "2-4"."""
    if isinstance(item, bool):
        raise ShapeSpecError("a dimension cannot be true/false")
    if isinstance(item, int):
        if item < 0:
            raise ShapeSpecError("a dimension's length cannot be negative")
        return Dimension(item, item)
    if not isinstance(item, str):
        raise ShapeSpecError("a dimension is an integer or a string such as '* time'")
    match = DIMENSION_PATTERN.match(item)
    if match is None:
        raise ShapeSpecError(
            "not a dimension: write a length (512), '*' for any length or a range "
            "('2-10', '2-*'), optionally followed by a lowercase name ('* time'), "
            "or '...' last for any further dimensions"
        )
    label = match["label"]
    if match["ellipsis"]:
        return Dimension(rest=True)
    if match["any"]:
        return Dimension(None, None, label)
    if match["exact"] is not None:
        size = int(match["exact"])
        return Dimension(size, size, label)
    if match["below"] is not None:
        return Dimension(None, int(match["below"]), label)
    lo = int(match["lo"])
    hi = None if match["hi"] == "*" else int(match["hi"])
    if hi is not None and lo > hi:
        raise ShapeSpecError(f"the range {lo}-{hi} is empty: its start is above its end")
    return Dimension(lo, hi, label)


def parse_shape(items: list[Any] | tuple[Any, ...]) -> tuple[Dimension, ...]:
    """A whole `shape` list; raises ShapeSpecError naming the bad item's index."""
    dims: list[Dimension] = []
    for index, item in enumerate(items):
        try:
            dim = parse_dimension(item)
        except ShapeSpecError as exc:
            raise ShapeSpecError(f"[{index}] {item!r}: {exc}") from None
        if dim.rest and index != len(items) - 1:
            raise ShapeSpecError(f"[{index}] '...' can only be the last item")
        dims.append(dim)
    return tuple(dims)


_TIMES = " \u00d7 "  # multiplication sign


def format_shape(dims: tuple[Dimension, ...]) -> str:
    """A shape for people, dimensions joined by multiplication signs."""
    return _TIMES.join(str(d) for d in dims) if dims else "scalar"


def to_numpydantic(dims: tuple[Dimension, ...], dtype: str | None) -> tuple[Any, Any]:
    """The numpydantic shape expression and dtype that a declared spec stands for.

    `NDArray[shape, dtype]` of these is the pydantic type of a matching array.
    """
    import typing

    import numpy as np
    import numpydantic
    import numpydantic.shape
    from numpydantic import dtype as nd

    # typed Any: these build type expressions at run time, which mypy cannot follow
    literal: Any = typing.Literal
    shape_of: Any = numpydantic.Shape
    range_of: Any = numpydantic.shape.Range
    repeat: Any = numpydantic.shape.Repeat

    terms: list[Any] = []
    for dim in dims:
        if dim.rest:
            terms.extend(list(repeat))
        elif dim.minimum is not None and dim.minimum == dim.maximum:
            terms.append(literal[dim.minimum])
        elif dim.minimum is None and dim.maximum is None:
            terms.append(int)
        else:
            lo = int if dim.minimum is None else literal[dim.minimum]
            hi = int if dim.maximum is None else literal[dim.maximum]
            terms.append(range_of[lo, hi])
    families: dict[str, Any] = {
        "integer": nd.Integer,
        "signed_integer": nd.SignedInteger,
        "unsigned_integer": nd.UnsignedInteger,
        "float": nd.Float,
        "complex": nd.Complex,
        "number": nd.Number,
        "str": np.str_,
        "bytes": np.bytes_,
        "bool": np.bool_,
        "object": np.object_,
        "datetime64": np.datetime64,
        "timedelta64": np.timedelta64,
    }
    target: Any
    if dtype is None:
        target = Any
    elif dtype in families:
        target = families[dtype]
    else:
        target = np.dtype(dtype).type
    return shape_of[tuple(terms)], target
