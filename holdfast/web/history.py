"""A dataset's edit history as readable diffs between consecutive versions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from holdfast.catalogue.models import DatasetVersion

FIELD_LABELS = {
    "title": "Title",
    "description": "Description",
    "source_urls": "Source URLs",
    "license": "Licence",
    "publisher": "Publisher",
    "threat": "Threat",
    "scarcity": "Scarcity",
    "tags": "Tags",
}
# A description diff shows at most this many changed lines; the rest is summarised.
MAX_DIFF_LINES = 400


@dataclass
class FieldChange:
    field: str
    label: str
    diff: Markup


@dataclass
class VersionView:
    version: DatasetVersion
    changes: list[FieldChange]


def _text_diff(before: str, after: str) -> Markup:
    """Changed lines of a text: removed lines in <del>, added lines in <ins>."""
    out: list[str] = []
    shown = 0
    old_lines, new_lines = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        for line in old_lines[a0:a1]:
            out.append(f"<del>- {escape(line)}</del>")
            shown += 1
        for line in new_lines[b0:b1]:
            out.append(f"<ins>+ {escape(line)}</ins>")
            shown += 1
        if shown > MAX_DIFF_LINES:
            out.append("… (more changes not shown)")
            break
    return Markup("\n".join(out))  # noqa: S704 - every piece is escaped above


def _list_diff(before: list[Any], after: list[Any]) -> Markup:
    removed = [x for x in before if x not in after]
    added = [x for x in after if x not in before]
    out = [f"<del>- {escape(str(x))}</del>" for x in removed]
    out += [f"<ins>+ {escape(str(x))}</ins>" for x in added]
    if not out:
        out.append("(order changed)")
    return Markup("\n".join(out))  # noqa: S704 - every piece is escaped above


def _value_diff(before: Any, after: Any) -> Markup:
    added = f"<ins>+ {escape(str(after))}</ins>"
    if before is None or before == "":
        return Markup(added)  # noqa: S704 - escaped
    return Markup(f"<del>- {escape(str(before))}</del>\n{added}")  # noqa: S704 - escaped


def diff_versions(older: dict[str, Any] | None, newer: dict[str, Any]) -> list[FieldChange]:
    """What changed from `older` to `newer` (every non-empty field when older is None)."""
    changes = []
    for field, label in FIELD_LABELS.items():
        before = (older or {}).get(field)
        after = newer.get(field)
        if before == after or (older is None and not after):
            continue
        if isinstance(after, list) or isinstance(before, list):
            diff = _list_diff(list(before or []), list(after or []))
        elif field == "description":
            diff = _text_diff(str(before or ""), str(after or ""))
        else:
            diff = _value_diff(before, after)
        changes.append(FieldChange(field, label, diff))
    return changes


def history(versions: list[DatasetVersion]) -> list[VersionView]:
    """Each version (newest first) with what it changed from the one before."""
    ordered = sorted(versions, key=lambda v: v.number)
    views = []
    previous: dict[str, Any] | None = None
    for version in ordered:
        views.append(VersionView(version, diff_versions(previous, version.data)))
        previous = version.data
    views.reverse()
    return views
