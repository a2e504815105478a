"""Load YAML into plain data while remembering the line of every field.

PyYAML's loaders forget where values came from, and its YAML 1.1 rules turn `NO`,
`on` and `12:30` into booleans and numbers and `2020-01-01` into a date object. This
loader composes the node tree itself and constructs only YAML 1.2 core-schema scalars
(strings, integers, floats, true/false, null), so a metadata file means what it looks
like, and every error can name the line it is about.

Anything beyond plain data (tags, merge keys, duplicate keys) is refused, and the
number of values and the nesting depth are bounded so that an alias bomb or a deeply
nested file cannot exhaust memory or the stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# A path to a value inside the document: mapping keys and sequence indexes.
FieldPath = tuple[str | int, ...]

MAX_VALUES = 200_000
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+0123456789.",
    ),
]


class _CoreLoader(yaml.SafeLoader):
    """A SafeLoader whose implicit scalar types are those of the YAML 1.2 core schema."""


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _CORE_RESOLVERS:
    _CoreLoader.add_implicit_resolver(_tag, _pattern, list(_first))
# PyYAML looks up the resolvers of an empty plain scalar under the key ""
_CoreLoader.add_implicit_resolver(_NULL, _CORE_RESOLVERS[0][1], [""])


class YamlError(Exception):
    """The text is not YAML this loader accepts; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class LocatedDocument:
    """Plain data from a YAML document and where each part of it was written."""

    data: Any
    # line of each value, and (under the path extended with "<key>:") of each key
    lines: Mapping[FieldPath, int]

    def line_of(self, path: FieldPath) -> int | None:
        """The line of the value at `path`, or of its nearest ancestor that has one."""
        return locate(self.lines, path)

    def key_line(self, path: FieldPath, key: str) -> int | None:
        """The line where `key` is written in the mapping at `path`."""
        line = self.lines.get((*path, _key_marker(key)))
        return line if line is not None else self.line_of(path)


def locate(lines: Mapping[FieldPath, int], path: FieldPath) -> int | None:
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def _key_marker(key: str) -> str:
    # Keys and values share one map; a key entry cannot clash with a real field name
    # because field names never contain a NUL.
    return f"\0key:{key}"


def load_located(text: str) -> LocatedDocument:
    """Parse one YAML document into plain data, recording the line of each value."""
    try:
        node = yaml.compose(text, Loader=_CoreLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        raise YamlError(f"not valid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}", None) from None
    if node is None:
        return LocatedDocument(None, {(): 1})
    builder = _Builder()
    data = builder.build(node, (), 0)
    return LocatedDocument(data, builder.lines)


class _Builder:
    def __init__(self) -> None:
        self.lines: dict[FieldPath, int] = {}
        self.count = 0

    def build(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_VALUES:
            raise YamlError(f"too many values (more than {MAX_VALUES})", line)
        if depth > MAX_DEPTH:
            raise YamlError(f"nested more than {MAX_DEPTH} levels deep", line)
        self.lines.setdefault(path, line)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node, line)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise YamlError(f"the tag {node.tag} is not allowed here", line)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise YamlError(f"the tag {node.tag} is not allowed here", line)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                is_merge = isinstance(key_node, yaml.ScalarNode) and (
                    key_node.tag == "tag:yaml.org,2002:merge"
                    or (key_node.value == "<<" and key_node.style is None)
                )
                if not isinstance(key_node, yaml.ScalarNode) or is_merge:
                    raise YamlError(
                        "keys must be plain names (no merge keys or complex keys)", key_line
                    )
                key = _scalar(key_node, key_line)
                if not isinstance(key, str):
                    # Numbers and booleans as keys are almost always a typo; the schema's
                    # field names are all strings.
                    key = key_node.value
                if key in result:
                    raise YamlError(f"the key {key!r} appears twice in this mapping", key_line)
                self.lines[(*path, _key_marker(key))] = key_line
                result[key] = self.build(value_node, (*path, key), depth + 1)
            return result
        raise YamlError(
            "unsupported YAML node", line
        )  # pragma: no cover - composer makes only these


def _scalar(node: yaml.ScalarNode, line: int) -> Any:
    value: str = node.value
    tag = node.tag
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return value.lower() == "true"
    try:
        if tag == _INT:
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        if tag == _FLOAT:
            lowered = value.lower()
            if lowered.endswith(".inf"):
                return -math.inf if lowered.startswith("-") else math.inf
            if lowered == ".nan":
                return math.nan
            return float(value)
    except ValueError:
        # only reachable through an explicit !!int or !!float tag on a non-number
        raise YamlError(f"{value!r} is not a number", line) from None
    raise YamlError(f"the tag {tag} is not allowed here", line)
