"""holdfast.yaml: the metadata file that describes a dataset and each file or array in it.

The schema is written in LinkML (`schema/holdfast.linkml.yaml`); the JSON Schema generated
from it (`schema/holdfast.schema.json`) validates files here with `jsonschema`, so no
LinkML runtime is needed. What a JSON Schema cannot say is checked after it: ORCID check
digits, SPDX licence expressions, real calendar dates in order, identifiers of the type
they claim, shape items that make sense, paths that stay inside the dataset folder.

    >>> meta = load_metadata(Path("holdfast.yaml"))     # or the YAML text itself
    >>> meta.files[0].spec.dtype
    'uint16'

Every problem is reported at once, each with the line and field it is about:

    holdfast.yaml:12: creators[0].orcid: '0000-0002-1825-0098' is not a valid ORCID ...
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from holdfast.arrays._yaml import FieldPath, LocatedDocument, YamlError, load_located, locate
from holdfast.arrays.errors import MetadataError, MissingExtraError, Problem
from holdfast.arrays.shapes import (
    DIMENSION_PATTERN,
    Dimension,
    ShapeSpecError,
    format_shape,
    parse_dimension,
    parse_shape,
)

METADATA_FILENAME = "holdfast.yaml"
MAX_METADATA_BYTES = 4 * 1024 * 1024

# Formats whose files hold named arrays inside them (listed under `arrays`).
CONTAINER_FORMATS = frozenset({"zarr", "hdf5", "nwb", "netcdf", "npz"})


# --- the typed result -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Creator:
    name: str
    orcid: str | None = None  # bare iD, e.g. 0000-0002-1825-0097
    affiliation: str | None = None
    role: str | None = None

    @property
    def orcid_url(self) -> str | None:
        return f"https://orcid.org/{self.orcid}" if self.orcid else None


@dataclass(frozen=True, slots=True)
class TemporalCoverage:
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class BoundingBox:
    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True, slots=True)
class SpatialCoverage:
    bounding_box: BoundingBox | None = None
    places: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelatedIdentifier:
    identifier: str
    identifier_type: str
    relation_type: str

    @property
    def url(self) -> str | None:
        """A resolver URL for the identifier, when there is a standard one."""
        kind, value = self.identifier_type, self.identifier
        if kind == "DOI":
            return f"https://doi.org/{value}"
        if kind == "URL":
            return value
        if kind == "arXiv":
            return f"https://arxiv.org/abs/{value}"
        if kind == "Handle":
            return f"https://hdl.handle.net/{value}"
        if kind == "ARK":
            return f"https://n2t.net/{value}"
        if kind == "PMID":
            return f"https://pubmed.ncbi.nlm.nih.gov/{value}/"
        return None


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """Shape, dtype, units and meaning of one array (all optional)."""

    shape: tuple[Dimension, ...] | None = None
    dtype: str | None = None
    units: str | None = None
    description: str | None = None

    @property
    def shape_text(self) -> str | None:
        return None if self.shape is None else format_shape(self.shape)

    @property
    def declares_array(self) -> bool:
        return self.shape is not None or self.dtype is not None


@dataclass(frozen=True, slots=True)
class ArrayEntry:
    """An array inside a container file, at `array_path` within it."""

    array_path: str
    spec: ArraySpec
    field_path: FieldPath = ()  # where it is in the metadata, for error messages


@dataclass(frozen=True, slots=True)
class DataFile:
    path: str  # relative, forward slashes, never leaving the dataset folder
    format: str
    spec: ArraySpec = field(default_factory=ArraySpec)
    arrays: tuple[ArrayEntry, ...] = ()
    field_path: FieldPath = ()

    @property
    def description(self) -> str | None:
        return self.spec.description


@dataclass(frozen=True, slots=True)
class DatasetMetadata:
    title: str
    description: str | None = None
    creators: tuple[Creator, ...] = ()
    license: str | None = None  # canonical SPDX expression
    keywords: tuple[str, ...] = ()
    temporal_coverage: TemporalCoverage | None = None
    spatial_coverage: SpatialCoverage | None = None
    related_identifiers: tuple[RelatedIdentifier, ...] = ()
    files: tuple[DataFile, ...] = ()
    # where it was read from, and the line of each field, to locate later problems
    source: str | None = None
    lines: Mapping[FieldPath, int] = field(default_factory=dict, repr=False, compare=False)

    def problem(self, path: FieldPath, message: str, severity: str = "error") -> Problem:
        """A problem about the field at `path`, located in the metadata file."""
        return Problem(
            field=format_field(path),
            message=message,
            source=self.source,
            line=locate(self.lines, path),
            severity="warning" if severity == "warning" else "error",
        )

    def file(self, path: str) -> DataFile | None:
        for data_file in self.files:
            if data_file.path == path:
                return data_file
        return None


# --- loading ---------------------------------------------------------------------------


def load_metadata(
    path_or_text: Path | str | bytes, *, source: str | None = None
) -> DatasetMetadata:
    """Read and validate a holdfast.yaml; raise MetadataError listing every problem.

    A `pathlib.Path` is read from disk; a `str` or `bytes` is the YAML text itself.
    `source` names the file in messages (default: the file's name, or holdfast.yaml).
    """
    if isinstance(path_or_text, Path):
        name = source or path_or_text.name
        try:
            size = path_or_text.stat().st_size
            if size > MAX_METADATA_BYTES:
                raise MetadataError([_too_big(name)])
            raw = path_or_text.read_bytes()
        except OSError as exc:
            raise MetadataError(
                [Problem("", f"cannot read the file: {exc.strerror or exc}", name, None)]
            ) from None
    else:
        name = source or METADATA_FILENAME
        raw = path_or_text.encode() if isinstance(path_or_text, str) else path_or_text
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError([_too_big(name)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MetadataError([Problem("", "the file is not UTF-8 text", name, line)]) from None
    try:
        document = load_located(text)
    except YamlError as exc:
        raise MetadataError([Problem("", exc.message, name, exc.line)]) from None
    if not isinstance(document.data, dict):
        hint = ""
        if isinstance(path_or_text, str) and isinstance(document.data, str):
            hint = " (to read a file, pass a pathlib.Path)"
        raise MetadataError(
            [Problem("", f"the document must be a mapping of fields (title: ...){hint}", name, 1)]
        )
    return _validate(document, name)


def metadata_from_dict(data: Mapping[str, Any], *, source: str = "metadata") -> DatasetMetadata:
    """Validate metadata already parsed (e.g. received as JSON); no line numbers."""
    if not isinstance(data, Mapping):
        raise MetadataError([Problem("", "metadata must be a JSON object", source, None)])
    # a JSON round trip gives plain types and rejects what JSON could not have carried
    try:
        plain = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise MetadataError([Problem("", f"not plain JSON data: {exc}", source, None)]) from None
    return _validate(LocatedDocument(plain, {}), source)


def _too_big(name: str) -> Problem:
    return Problem("", f"the file is larger than {MAX_METADATA_BYTES // (1024 * 1024)} MiB", name)


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema generated from the LinkML schema, as shipped with holdfast."""
    text = resources.files("holdfast.arrays.schema").joinpath("holdfast.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("jsonschema") from exc
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate(document: LocatedDocument, source: str) -> DatasetMetadata:
    data = document.data
    problems: list[Problem] = []

    def report(path: FieldPath, message: str, *, key: str | None = None) -> None:
        line = document.key_line(path, key) if key is not None else document.line_of(path)
        where = (*path, key) if key is not None else path
        problem = Problem(format_field(where), message, source, line)
        # the schema and the checks in code may both catch one mistake (e.g. a path)
        if problem not in problems:
            problems.append(problem)

    for error in _validator().iter_errors(data):
        _report_schema_error(error, data, report)
    # Checks beyond JSON Schema run on whatever parts are well-typed, so a file with
    # several mistakes gets them all in one go.
    _check_semantics(data, report)
    if problems:
        problems.sort(key=lambda p: (p.line if p.line is not None else 0, p.field))
        raise MetadataError(problems)
    return _build(data, source, document.lines)


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


def _report_schema_error(error: Any, data: Any, report: Any) -> None:
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


def _check_semantics(data: Any, report: Any) -> None:
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


def _check_temporal(coverage: Any, report: Any) -> None:
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


def _check_spatial(coverage: Any, report: Any) -> None:
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


def _check_files(files: list[Any], report: Any) -> None:
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


def _check_shape(shape: Any, path: FieldPath, report: Any) -> None:
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


# --- building the typed result ------------------------------------------------------------


def _spec(entry: Mapping[str, Any]) -> ArraySpec:
    shape = entry.get("shape")
    return ArraySpec(
        shape=parse_shape(shape) if shape is not None else None,
        dtype=entry.get("dtype"),
        units=entry.get("units"),
        description=entry.get("description"),
    )


def _build(data: dict[str, Any], source: str, lines: Mapping[FieldPath, int]) -> DatasetMetadata:
    temporal = data.get("temporal_coverage")
    spatial = data.get("spatial_coverage")
    box = spatial.get("bounding_box") if spatial else None
    license_ = data.get("license")
    files = []
    for i, entry in enumerate(data.get("files", [])):
        arrays = tuple(
            ArrayEntry(
                array_path=a["array_path"], spec=_spec(a), field_path=("files", i, "arrays", j)
            )
            for j, a in enumerate(entry.get("arrays", []))
        )
        files.append(
            DataFile(
                path=entry["path"],
                format=entry["format"],
                spec=_spec(entry),
                arrays=arrays,
                field_path=("files", i),
            )
        )
    return DatasetMetadata(
        title=data["title"].strip(),
        description=data.get("description"),
        creators=tuple(
            Creator(
                name=c["name"].strip(),
                orcid=bare_orcid(c["orcid"]) if c.get("orcid") else None,
                affiliation=c.get("affiliation"),
                role=c.get("role"),
            )
            for c in data.get("creators", [])
        ),
        license=canonical_license(license_) if license_ else None,
        keywords=tuple(k.strip() for k in data.get("keywords", [])),
        temporal_coverage=TemporalCoverage(_text(temporal.get("start")), _text(temporal.get("end")))
        if temporal
        else None,
        spatial_coverage=SpatialCoverage(
            bounding_box=BoundingBox(
                float(box["west"]), float(box["south"]), float(box["east"]), float(box["north"])
            )
            if box
            else None,
            places=tuple(spatial.get("places", [])),
        )
        if spatial
        else None,
        related_identifiers=tuple(
            RelatedIdentifier(
                identifier=normalise_identifier(r["identifier_type"], r["identifier"]),
                identifier_type=r["identifier_type"],
                relation_type=r["relation_type"],
            )
            for r in data.get("related_identifiers", [])
        ),
        files=tuple(files),
        source=source,
        lines=dict(lines),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def format_field(path: FieldPath) -> str:
    """("creators", 0, "orcid") -> "creators[0].orcid"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# --- for the instance: search and display ---------------------------------------------------


def search_text(meta: DatasetMetadata) -> str:
    """Plain text to index for full-text search: every human-meaningful field, one per line."""
    lines: list[str] = [meta.title]
    if meta.description:
        lines.append(meta.description.strip())
    for creator in meta.creators:
        lines.append(" ".join(filter(None, [creator.name, creator.affiliation, creator.orcid])))
    lines.extend(meta.keywords)
    if meta.license:
        lines.append(meta.license)
    if meta.spatial_coverage:
        lines.extend(meta.spatial_coverage.places)
    if meta.temporal_coverage:
        span = [meta.temporal_coverage.start, meta.temporal_coverage.end]
        lines.append(" ".join(s for s in span if s))
    for related in meta.related_identifiers:
        lines.append(f"{related.identifier_type} {related.identifier}")
    for data_file in meta.files:
        parts = [data_file.path, data_file.format, *_spec_words(data_file.spec)]
        lines.append(" ".join(parts))
        for array in data_file.arrays:
            lines.append(" ".join([array.array_path, *_spec_words(array.spec)]))
    return "\n".join(line for line in lines if line.strip())


def _spec_words(spec: ArraySpec) -> list[str]:
    words: list[str] = []
    if spec.shape is not None:
        words.extend(d.label for d in spec.shape if d.label)
    words.extend(w for w in (spec.dtype, spec.units, spec.description) if w)
    return words


def to_display(meta: DatasetMetadata) -> dict[str, Any]:
    """JSON-ready fields for the dataset and upload pages, in reading order."""

    def spec(spec_: ArraySpec) -> dict[str, Any]:
        return {
            "shape": spec_.shape_text,
            "dtype": spec_.dtype,
            "units": spec_.units,
            "description": spec_.description,
        }

    license_url = None
    if meta.license and re.fullmatch(r"[A-Za-z0-9.+-]+", meta.license):
        license_url = f"https://spdx.org/licenses/{meta.license}.html"
    return {
        "title": meta.title,
        "description": meta.description,
        "creators": [
            {
                "name": c.name,
                "orcid": c.orcid,
                "orcid_url": c.orcid_url,
                "affiliation": c.affiliation,
                "role": c.role,
            }
            for c in meta.creators
        ],
        "license": {"id": meta.license, "url": license_url} if meta.license else None,
        "keywords": list(meta.keywords),
        "temporal_coverage": {
            "start": meta.temporal_coverage.start,
            "end": meta.temporal_coverage.end,
        }
        if meta.temporal_coverage
        else None,
        "spatial_coverage": {
            "bounding_box": {
                "west": meta.spatial_coverage.bounding_box.west,
                "south": meta.spatial_coverage.bounding_box.south,
                "east": meta.spatial_coverage.bounding_box.east,
                "north": meta.spatial_coverage.bounding_box.north,
            }
            if meta.spatial_coverage.bounding_box
            else None,
            "places": list(meta.spatial_coverage.places),
        }
        if meta.spatial_coverage
        else None,
        "related_identifiers": [
            {
                "identifier": r.identifier,
                "identifier_type": r.identifier_type,
                "relation_type": r.relation_type,
                "url": r.url,
            }
            for r in meta.related_identifiers
        ],
        "files": [
            {
                "path": f.path,
                "format": f.format,
                **spec(f.spec),
                "arrays": [{"array_path": a.array_path, **spec(a.spec)} for a in f.arrays],
            }
            for f in meta.files
        ],
    }
