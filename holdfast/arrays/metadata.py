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

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from holdfast.arrays._yaml import FieldPath, LocatedDocument, YamlError, load_located, locate
from holdfast.arrays.errors import MetadataError, MissingExtraError, Problem
from holdfast.arrays.metadata_rules import (
    CONTAINER_FORMATS,
    METADATA_FILENAME,
    bare_orcid,
    canonical_license,
    check_semantics,
    normalise_identifier,
    orcid_is_valid,
    parse_coverage_date,
    report_schema_error,
)
from holdfast.arrays.shapes import Dimension, format_shape, parse_shape

__all__ = [
    "CONTAINER_FORMATS",
    "METADATA_FILENAME",
    "ArrayEntry",
    "ArraySpec",
    "BoundingBox",
    "Creator",
    "DataFile",
    "DatasetMetadata",
    "RelatedIdentifier",
    "SpatialCoverage",
    "TemporalCoverage",
    "format_field",
    "json_schema",
    "load_metadata",
    "metadata_from_dict",
    "orcid_is_valid",
    "parse_coverage_date",
    "search_text",
    "to_display",
]

MAX_METADATA_BYTES = 4 * 1024 * 1024


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
        report_schema_error(error, report)
    # Checks beyond JSON Schema run on whatever parts are well-typed, so a file with
    # several mistakes gets them all in one go.
    check_semantics(data, report)
    if problems:
        problems.sort(key=lambda p: (p.line if p.line is not None else 0, p.field))
        raise MetadataError(problems)
    return _build(data, source, document.lines)


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
