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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from holdfast.arrays.errors import MetadataError, Problem

METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})
MAX_METADATA_DOCUMENT = 1024 * 1024


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


def prepare_publication(folder: Path, *, torrent_name: str | None = None) -> Publication:
    """Load and check `folder/holdfast.yaml` and the arrays it declares.

    Raises MetadataError listing every problem (file, line, field, message); warnings
    are returned in `.warnings`. `torrent_name` is the torrent's top folder name when
    it is not the folder's own name.
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
    problems = check_arrays(folder, meta)
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


__all__ = ["Publication", "prepare_publication", "zarr_metadata_files"]
