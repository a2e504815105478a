"""The rules of holdfast.yaml beyond its JSON Schema, and schema errors said plainly.

JSON Schema says what shape the document has; these say what a JSON Schema cannot:
ORCID check digits, SPDX licence expressions, real dates in order, identifiers of the
type they claim, shape items that make sense, file paths that stay inside the dataset.
Each rule reports through `report(path, message, key=None)`, which locates the problem.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import Any

from holdfast.arrays._yaml import FieldPath
from holdfast.arrays.errors import MissingExtraError
from holdfast.arrays.shapes import DIMENSION_PATTERN, ShapeSpecError, parse_dimension

METADATA_FILENAME = "holdfast.yaml"

# Formats whose files hold named arrays inside them (listed under `arrays`).
CONTAINER_FORMATS = frozenset({"zarr", "hdf5", "nwb", "netcdf", "npz"})

Report = Callable[..., None]


# --- JSON Schema errors, said plainly ---------------------------------------------------

_PATTERN_MESSAGES = {
    "orcid": "is not an ORCID iD (expected 0000-0000-0000-000X or https://orcid.org/…)",
    "path": (
        "must be a relative path inside the dataset folder, with forward slashes "
        "(no leading '/', no '..' or '.', no drive letter, no '//')"
    ),
    "array_path": "must be a path inside the container without '..' or '.' parts or backslashes",
    "start": "is not an ISO 8601 date or date-time (e.g. 2021, 2021-06 or 2021-06-30)",
    "end": "is not an ISO 8601 date or date-time (e.g. 2021, 2021-06 or 2021-06-30)",
    "license": "is not an SPDX licence identifier or expression (e.g. CC-BY-4.0)",
}

_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
}


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def report_schema_error(error: Any, report: Report) -> None:
    path: FieldPath = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    if kind == "required":
        missing = [
            k for k in error.validator_value if isinstance(instance, dict) and k not in instance
        ]
        for key in missing:
            report(path, f"the required field '{key}' is missing")
        return
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in instance:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                report(path, f"unknown field{hint}; allowed: {', '.join(allowed)}", key=key)
        return
    if kind == "type":
        expected = error.validator_value
        types = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(str(_JSON_TYPES.get(t, t)) for t in types)
        hint = ""
        if (
            "string" in expected
            and isinstance(instance, int | float)
            and not isinstance(instance, bool)
        ):
            hint = " (YAML read it as a number: put it in quotes)"
        report(path, f"expected {wanted}, found {_describe(instance)}{hint}")
        return
    if kind == "enum":
        choices = [str(c) for c in error.validator_value]
        close = difflib.get_close_matches(str(instance), choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = ", ".join(choices) if len(choices) <= 30 else ", ".join(choices[:30]) + ", …"
        report(path, f"{_describe(instance)} is not one of: {listing}{hint}")
        return
    if kind == "pattern":
        if error.validator_value == "\\S":
            report(path, "must not be blank")
        elif name in _PATTERN_MESSAGES:
            report(path, f"{_describe(instance)} {_PATTERN_MESSAGES[name]}")
        else:  # pragma: no cover - every patterned field has a message above
            report(path, f"{_describe(instance)} is not in the expected form")
        return
    if kind == "anyOf" and len(path) >= 2 and path[-2] == "shape":
        try:
            parse_dimension(instance)
        except ShapeSpecError as exc:
            report(path, f"{_describe(instance)}: {exc}")
            return
    if kind == "anyOf" and name in ("start", "end"):
        report(path, f"{_describe(instance)} {_PATTERN_MESSAGES[name]}")
        return
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        report(path, error.message)
        return
    report(path, error.message)  # pragma: no cover - other keywords are not in the schema


# --- checks a JSON Schema cannot express -------------------------------------------------


def orcid_is_valid(orcid: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of a bare ORCID iD (0000-0002-1825-0097)."""
    digits = orcid.replace("-", "")
    if not re.fullmatch(r"[0-9]{15}[0-9X]", digits):
        return False
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def bare_orcid(value: str) -> str:
    return value.removeprefix("https://orcid.org/")


def canonical_license(expression: str) -> str | None:
    """The canonical form of an SPDX licence expression, or None if it is not one."""
    try:
        from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
    except ImportError as exc:  # pragma: no cover - packaging < 24.2
        raise MissingExtraError("packaging>=24.2") from exc
    try:
        return str(canonicalize_license_expression(expression))
    except InvalidLicenseExpression:
        return None


_DATE = re.compile(
    r"^(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
)


def parse_coverage_date(value: str) -> datetime | None:
    """The earliest instant a coverage date denotes (UTC), or None if it is not a date."""
    match = _DATE.match(value)
    if match is None:
        return None
    try:
        year = int(match["y"])
        month = int(match["m"] or 1)
        day = int(match["d"] or 1)
        date(year, month, day)
        if match["time"] is None:
            return datetime(year, month, day, tzinfo=UTC)
        stamp = f"{match['y']}-{month:02d}-{day:02d}T{match['time']}{match['tz'] or ''}"
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_IDENTIFIER_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "DOI": (re.compile(r"^10\.[0-9]{4,9}/\S+$"), "a DOI such as 10.5281/zenodo.1234567"),
    "URL": (re.compile(r"^https?://[^\s/]+\S*$"), "an http:// or https:// URL"),
    "arXiv": (
        re.compile(r"^([0-9]{4}\.[0-9]{4,5}|[a-z-]+(\.[A-Z]{2})?/[0-9]{7})(v[0-9]+)?$"),
        "an arXiv id such as 2101.00001",
    ),
    "infohash": (
        re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$"),
        "a BitTorrent infohash (40 or 64 lowercase hex digits)",
    ),
    "PMID": (re.compile(r"^[0-9]{1,9}$"), "a PubMed id (digits)"),
}


def normalise_identifier(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "DOI":
        for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
            if value.lower().startswith(prefix):
                return value[len(prefix) :]
    if kind == "arXiv" and value.lower().startswith("arxiv:"):
        return value[6:]
    return value


def _is_safe_relative(path: str) -> bool:
    # Defence in depth behind the schema's pattern: the same rule, written in code.
    if not path or "\\" in path or "\0" in path or path.startswith("/"):
        return False
    if re.match(r"^[A-Za-z]:", path):
        return False
    parts = path.split("/")
    return all(part not in ("", ".", "..") for part in parts)


def check_semantics(data: Any, report: Report) -> None:
    if not isinstance(data, dict):
        return
    creators = data.get("creators")
    if isinstance(creators, list):
        for i, creator in enumerate(creators):
            orcid = creator.get("orcid") if isinstance(creator, dict) else None
            well_formed = isinstance(orcid, str) and re.fullmatch(
                r"(https://orcid\.org/)?[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]", orcid
            )
            if well_formed and not orcid_is_valid(bare_orcid(str(orcid))):
                report(
                    ("creators", i, "orcid"),
                    f"{orcid!r} is not a valid ORCID: its check digit is wrong",
                )
    license_ = data.get("license")
    if isinstance(license_, str) and license_.strip() and canonical_license(license_) is None:
        report(
            ("license",),
            f"{license_!r} is not an SPDX licence identifier or expression "
            "(see https://spdx.org/licenses/; e.g. CC-BY-4.0, CC0-1.0, MIT)",
        )
    _check_temporal(data.get("temporal_coverage"), report)
    _check_spatial(data.get("spatial_coverage"), report)
    identifiers = data.get("related_identifiers")
    if isinstance(identifiers, list):
        for i, item in enumerate(identifiers):
            if not isinstance(item, dict):
                continue
            kind, value = item.get("identifier_type"), item.get("identifier")
            if isinstance(kind, str) and isinstance(value, str) and kind in _IDENTIFIER_FORMS:
                pattern, wanted = _IDENTIFIER_FORMS[kind]
                if not pattern.match(normalise_identifier(kind, value)):
                    report(("related_identifiers", i, "identifier"), f"{value!r} is not {wanted}")
    files = data.get("files")
    if isinstance(files, list):
        _check_files(files, report)


def _check_temporal(coverage: Any, report: Report) -> None:
    if not isinstance(coverage, dict):
        return
    moments: dict[str, datetime] = {}
    for key in ("start", "end"):
        value = coverage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 9999:
            value = str(value)
        if isinstance(value, str) and _DATE.match(value):
            moment = parse_coverage_date(value)
            if moment is None:
                report(("temporal_coverage", key), f"{value!r} is not a real date or time")
            else:
                moments[key] = moment
    if "start" in moments and "end" in moments and moments["start"] > moments["end"]:
        report(("temporal_coverage", "end"), "the end is before the start")


def _check_spatial(coverage: Any, report: Report) -> None:
    if not isinstance(coverage, dict):
        return
    box = coverage.get("bounding_box")
    if isinstance(box, dict):
        for key in ("west", "south", "east", "north"):
            value = box.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                report(("spatial_coverage", "bounding_box", key), "must be a finite number")
        south, north = box.get("south"), box.get("north")
        if (
            isinstance(south, int | float)
            and isinstance(north, int | float)
            and not isinstance(south, bool)
            and south > north
        ):
            report(("spatial_coverage", "bounding_box", "north"), "north is below south")
        # west > east is allowed: the box crosses the antimeridian.


def _check_files(files: list[Any], report: Report) -> None:
    seen: dict[str, int] = {}
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            continue
        path = entry.get("path")
        if isinstance(path, str):
            if not _is_safe_relative(path):
                report(("files", i, "path"), f"{path!r} {_PATTERN_MESSAGES['path']}")
            elif path in seen:
                report(
                    ("files", i, "path"), f"{path!r} is already described by files[{seen[path]}]"
                )
            else:
                seen[path] = i
            if PurePosixPath(path).name == METADATA_FILENAME:
                report(("files", i, "path"), "the metadata file does not describe itself")
        _check_shape(entry.get("shape"), ("files", i, "shape"), report)
        arrays = entry.get("arrays")
        fmt = entry.get("format")
        if arrays is not None:
            if isinstance(fmt, str) and fmt not in CONTAINER_FORMATS:
                report(
                    ("files", i, "arrays"),
                    f"only container formats ({', '.join(sorted(CONTAINER_FORMATS))}) list "
                    f"arrays; a {fmt} file is described by shape and dtype",
                )
            if "shape" in entry or "dtype" in entry:
                report(
                    ("files", i, "arrays"),
                    "give either shape/dtype (the file is one array) or arrays "
                    "(the arrays inside it), not both",
                )
        if isinstance(arrays, list):
            names: dict[str, int] = {}
            for j, array in enumerate(arrays):
                if not isinstance(array, dict):
                    continue
                _check_shape(array.get("shape"), ("files", i, "arrays", j, "shape"), report)
                name = array.get("array_path")
                if isinstance(name, str):
                    key = name.strip("/")
                    if key in names:
                        report(
                            ("files", i, "arrays", j, "array_path"),
                            f"{name!r} is already described by arrays[{names[key]}]",
                        )
                    else:
                        names[key] = j


def _check_shape(shape: Any, path: FieldPath, report: Report) -> None:
    # Items of the wrong form are reported by the schema; this catches what its pattern
    # lets through: empty ranges, and "..." anywhere but last.
    if not isinstance(shape, list):
        return
    for index, item in enumerate(shape):
        if not isinstance(item, str) or not DIMENSION_PATTERN.match(item):
            continue
        try:
            dim = parse_dimension(item)
        except ShapeSpecError as exc:
            report((*path, index), f"{item!r}: {exc}")
            continue
        if dim.rest and index != len(shape) - 1:
            report((*path, index), "'...' can only be the last item")
