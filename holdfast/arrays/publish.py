"""What publishing a dataset folder gives the instance: checked metadata, ready to store.

    from holdfast.arrays.publish import prepare_publication
    publication = prepare_publication(Path("recordings"))   # MetadataError if anything is wrong
    publication.title, publication.search_text, publication.display
    publication.metadata_files      # POST to /api/v1/uploads/<infohash>/zarr-metadata

`prepare_publication` reads `holdfast.yaml` in the folder (validated against the schema,
errors pointing at line and field), checks every declared array against the real one
(shape and dtype, from array metadata only), and lists the zarr metadata documents of the
folder as they will appear in its torrent (`<folder name>/<path>`, the layout of
`create_torrent(folder)`), so the instance can serve them and opening an array costs no
swarm traffic.

`holdfast publish` hands holdfast.yaml itself to the instance, which keeps its fields
for the pages and search (holdfast.arrays.stored). `upload_description(text,
publication)` is a Markdown description with the metadata appended as a readable
section (`display_markdown`), for places that take only a description.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from holdfast.arrays.errors import MetadataError, Problem

METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})
MAX_METADATA_DOCUMENT = 1024 * 1024
CONTENTS_HEADING = "## Contents (from holdfast.yaml)"
# The instance's limit on an upload's description (catalogue.schemas.LongText).
MAX_DESCRIPTION_CHARS = 100_000
SHORTENED_NOTE = "*(Shortened: the whole description is holdfast.yaml, inside the torrent.)*"


@dataclass(frozen=True)
class Publication:
    """The checked description of a dataset folder, for the instance to store and show."""

    title: str
    description: str | None
    creators: list[dict[str, Any]]  # name, orcid, orcid_url, affiliation, role
    keywords: list[str]
    license: str | None  # SPDX expression
    files: list[dict[str, Any]]  # path, format, shape, dtype, units, description, arrays
    display: dict[str, Any]  # every field, JSON-ready, for the dataset and upload pages
    search_text: str  # plain text to index
    metadata_yaml: str  # holdfast.yaml as written (it goes into the torrent too)
    metadata_files: list[dict[str, str]]  # [{"path", "content"}]: zarr metadata documents
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "creators": self.creators,
            "keywords": self.keywords,
            "license": self.license,
            "files": self.files,
            "display": self.display,
            "search_text": self.search_text,
            "warnings": self.warnings,
        }


def prepare_publication(
    folder: Path, *, torrent_name: str | None = None, arrays: bool = True
) -> Publication:
    """Load and check `folder/holdfast.yaml` and the arrays it declares.

    Raises MetadataError listing every problem (file, line, field, message); warnings
    are returned in `.warnings`. `torrent_name` is the torrent's top folder name when
    it is not the folder's own name. With `arrays=False` the declared shapes and dtypes
    are not compared with the data (for installs without numpy and zarr); a warning
    says so.
    """
    from holdfast.arrays.check import check_arrays
    from holdfast.arrays.metadata import load_metadata, search_text, to_display
    from holdfast.arrays.metadata_rules import METADATA_FILENAME

    folder = Path(folder)
    path = folder / METADATA_FILENAME
    if not folder.is_dir():
        raise MetadataError([Problem("", f"{folder} is not a folder")])
    if not path.is_file():
        raise MetadataError(
            [Problem("", f"{folder} has no {METADATA_FILENAME} describing the dataset")]
        )
    meta = load_metadata(path)
    if arrays:
        problems = check_arrays(folder, meta)
    else:
        problems = [
            Problem(
                "files",
                "shapes and dtypes were not checked against the arrays",
                METADATA_FILENAME,
                severity="warning",
            )
        ]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise MetadataError(errors)
    display = to_display(meta)
    return Publication(
        title=meta.title,
        description=meta.description,
        creators=display["creators"],
        keywords=list(meta.keywords),
        license=meta.license,
        files=display["files"],
        display=display,
        search_text=search_text(meta),
        metadata_yaml=path.read_text("utf-8-sig"),
        metadata_files=zarr_metadata_files(folder, torrent_name or folder.name),
        warnings=[str(p) for p in problems if p.severity != "error"],
    )


def zarr_metadata_files(folder: Path, prefix: str) -> list[dict[str, str]]:
    """The zarr metadata documents under `folder`, with their paths in the torrent."""
    base = folder.resolve()
    found: list[dict[str, str]] = []
    for path in sorted(base.rglob("*")):
        if path.name not in METADATA_NAMES or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_METADATA_DOCUMENT:
            continue
        try:
            content = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        relative = path.relative_to(base).as_posix()
        found.append({"path": f"{prefix}/{relative}" if prefix else relative, "content": content})
    return found


# --- the metadata as Markdown, for the upload's description -----------------------------

_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def _plain(value: Any) -> str:
    """Text shown as written: Markdown punctuation escaped, on one line."""
    text = " ".join(str(value).split())
    return _PUNCTUATION.sub(r"\\\1", text)


def _code(value: Any) -> str:
    """A code span holding `value` exactly (table pipes escaped)."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def _link(label: str, url: Any) -> str:
    if isinstance(url, str) and re.fullmatch(r"https?://[^\s<>]+", url):
        return f"[{label}](<{url}>)"
    return label


def _cell(value: Any, *, code: bool = False) -> str:
    if value is None or value == "":
        return ""
    return _code(value) if code else _plain(value)


def display_markdown(display: Mapping[str, Any]) -> str:
    """The metadata of `Publication.display` as Markdown: facts, then a table of files."""
    blocks: list[str] = []
    if display.get("title"):
        blocks.append(f"**{_plain(display['title'])}**")
    if display.get("description"):
        blocks.append(str(display["description"]).strip())
    facts: list[str] = []
    creators = []
    for c in display.get("creators") or []:
        name = _plain(c.get("name") or "")
        if c.get("orcid"):
            name += " (ORCID " + _link(_plain(c["orcid"]), c.get("orcid_url")) + ")"
        extra = ", ".join(_plain(x) for x in (c.get("affiliation"), c.get("role")) if x)
        creators.append(f"{name}, {extra}" if extra else name)
    if creators:
        facts.append("**Creators:** " + "; ".join(creators))
    licence = display.get("license")
    if licence:
        facts.append("**Licence:** " + _link(_plain(licence.get("id")), licence.get("url")))
    if display.get("keywords"):
        facts.append("**Keywords:** " + ", ".join(_plain(k) for k in display["keywords"]))
    temporal = display.get("temporal_coverage")
    if temporal and (temporal.get("start") or temporal.get("end")):
        span = f"{_plain(temporal.get('start') or '…')} to {_plain(temporal.get('end') or '…')}"
        facts.append("**Time:** " + span)
    spatial = display.get("spatial_coverage")
    if spatial:
        if spatial.get("places"):
            facts.append("**Places:** " + ", ".join(_plain(p) for p in spatial["places"]))
        box = spatial.get("bounding_box")
        if box:
            corners = ", ".join(f"{k} {_plain(box[k])}" for k in ("west", "south", "east", "north"))
            facts.append("**Bounding box:** " + corners)
    for related in display.get("related_identifiers") or []:
        label = _link(_plain(related.get("identifier") or ""), related.get("url"))
        kind = " ".join(
            _plain(x) for x in (related.get("relation_type"), related.get("identifier_type")) if x
        )
        facts.append(f"**{kind}:** {label}" if kind else label)
    if facts:
        blocks.append("\n".join(f"- {fact}" for fact in facts))
    rows: list[str] = []
    for f in display.get("files") or []:
        rows.append(_row(f.get("path"), f.get("format"), f))
        for a in f.get("arrays") or []:
            inner = str(a.get("array_path") or "").strip("/")
            rows.append(_row(f"{f.get('path')}/{inner}", None, a))
    if rows:
        head = "| Path | Format | Shape | Dtype | Units | Description |\n|---|---|---|---|---|---|"
        blocks.append("### Files\n\n" + head + "\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def _row(path: Any, fmt: Any, spec: Mapping[str, Any]) -> str:
    cells = [
        _cell(path, code=True),
        _cell(fmt),
        _cell(spec.get("shape"), code=True),
        _cell(spec.get("dtype"), code=True),
        _cell(spec.get("units")),
        _cell(spec.get("description")),
    ]
    return "| " + " | ".join(cells) + " |"


def upload_description(
    text: str, publication: Publication, *, limit: int = MAX_DESCRIPTION_CHARS
) -> str:
    """`text` (the upload's own description) followed by the metadata section.

    Every word of `publication.search_text` is in the section, so the instance's search
    finds the upload by any of them. The section is shortened, at a line, to keep the
    whole within `limit` characters; `text` itself is never cut.
    """
    from holdfast.catalogue.text import words

    section = CONTENTS_HEADING + "\n\n" + display_markdown(publication.display)
    shown = set(words(section))
    missing = list(dict.fromkeys(w for w in words(publication.search_text) if w not in shown))
    if missing:
        section += "\n\n*Also indexed:* " + " ".join(missing)
    own = text.rstrip()
    joiner = "\n\n" if own else ""
    room = limit - len(own) - len(joiner)
    if len(section) > room:
        room -= len(SHORTENED_NOTE) + 2
        if room <= len(CONTENTS_HEADING):
            return own  # no room for anything useful
        cut = section[:room]
        if "\n" in cut:
            cut = cut[: cut.rindex("\n")]
        section = cut.rstrip() + "\n\n" + SHORTENED_NOTE
    return own + joiner + section


__all__ = [
    "CONTENTS_HEADING",
    "Publication",
    "display_markdown",
    "prepare_publication",
    "upload_description",
    "zarr_metadata_files",
]
