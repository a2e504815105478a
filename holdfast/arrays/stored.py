"""The holdfast.yaml of an upload, kept by the instance: shown on pages, found by search.

`holdfast publish` hands the file over after the upload (`POST
/api/v1/uploads/{infohash}/metadata` with its text). The instance keeps it only if it
is the torrent's own `<name>/holdfast.yaml` (checked against the torrent's piece
hashes) and valid (the same checks as `holdfast publish`, errors at line and field);
it then stores the fields to show (holdfast.arrays.metadata.to_display) and adds the
file's words to the upload's search document. Reading it needs the `arrays` extra's
jsonschema; an instance without it refuses the file with a clear error.

    metadata_view(instance, upload_id)          # for the upload page, or None
    dataset_metadata_views(instance, dataset)   # from the dataset's approved uploads
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from holdfast.accounts.models import Account
from holdfast.arrays.errors import MetadataError, MissingExtraError
from holdfast.arrays.models import UploadMetadata
from holdfast.catalogue.models import SearchDocument, Status, Upload
from holdfast.catalogue.text import render_markdown
from holdfast.db.base import utcnow
from holdfast.errors import Conflict, InvalidInput
from holdfast.instance import Instance
from holdfast.torrents import Torrent

METADATA_FILENAME = "holdfast.yaml"
MAX_YAML_BYTES = 1024 * 1024
# The dataset page shows the metadata of at most this many approved uploads (newest).
MAX_DATASET_SECTIONS = 10
_HTTP_URL = re.compile(r"https?://[^\s<>\"'`]+")
_ORCID_URL = re.compile(r"https://orcid\.org/\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_SEPARATOR = "\n"


@dataclass(frozen=True)
class MetadataView:
    """What a page shows: the fields, links only where they are http(s) URLs."""

    display: dict[str, Any]
    description_html: str
    upload_name: str | None = None  # on the dataset page: which upload it describes
    upload_infohash: str | None = None


def metadata_path(torrent: Torrent) -> str:
    return f"{torrent.name}/{METADATA_FILENAME}"


def check_yaml(torrent: Torrent, content: str) -> tuple[dict[str, Any], str]:
    """(display fields, search text) of `content`, the torrent's own holdfast.yaml.

    InvalidInput when it is not that file or not valid (each problem at line and field).
    """
    from holdfast.arrays.metadata import load_metadata, search_text, to_display
    from holdfast.arrays.pieces import PieceMap

    data = content.encode("utf-8")
    if len(data) > MAX_YAML_BYTES:
        raise InvalidInput(
            f"holdfast.yaml is larger than {MAX_YAML_BYTES} bytes",
            fields={"content": "too large"},
        )
    pieces = PieceMap(torrent)
    path = metadata_path(torrent)
    index = pieces.index.get(path)
    if index is None:
        raise InvalidInput(
            f"this torrent has no {path}", fields={"content": f"{path} is not in the torrent"}
        )
    if pieces.file_pieces(index, data) is None:
        raise InvalidInput(
            f"this is not the {path} of the torrent (it does not match the piece hashes; a "
            "v1 torrent needs --align zarr for its files to be checked one by one)",
            fields={"content": "does not match the torrent"},
        )
    try:
        meta = load_metadata(content, source=METADATA_FILENAME)
    except MissingExtraError as exc:
        raise InvalidInput(
            f"this instance cannot read holdfast.yaml: {exc}", fields={"content": "not readable"}
        ) from None
    except MetadataError as exc:
        problems = "; ".join(str(p) for p in exc.problems[:20])
        raise InvalidInput(
            f"holdfast.yaml is not valid: {problems}", fields=exc.fields or {"content": problems}
        ) from None
    return to_display(meta), search_text(meta)


def store_metadata(
    instance: Instance, actor: Account, upload: Upload, torrent: Torrent, content: str | None
) -> UploadMetadata | None:
    """Keep (or, with None, forget) the upload's holdfast.yaml, and re-index the upload."""
    checked = check_yaml(torrent, content) if content is not None else None
    try:
        return _store(instance, actor, upload, content, checked)
    except IntegrityError:  # handed over twice at the same moment: one of them won
        raise Conflict("holdfast.yaml was handed over at the same time; try again") from None


def _store(
    instance: Instance,
    actor: Account,
    upload: Upload,
    content: str | None,
    checked: tuple[dict[str, Any], str] | None,
) -> UploadMetadata | None:
    with instance.db.write() as s:
        row = put_metadata(s, upload.id, content, checked, actor.id)
        if row is not None:
            s.flush()
            s.expunge(row)
        return row


def put_metadata(
    s: Session,
    upload_id: int,
    content: str | None,
    checked: tuple[dict[str, Any], str] | None,
    account_id: int | None,
    *,
    publish: bool = True,
) -> UploadMetadata | None:
    """In `s`: keep `content` (already checked by `check_yaml`) as the upload's
    holdfast.yaml, or forget it (None), and re-index the upload. With `publish` the
    commit reports ("upload_metadata", upload id), so federation sends the new version
    of the upload's object."""
    row = s.get(UploadMetadata, upload_id)
    old_text = row.search_text if row is not None else ""
    new_text = checked[1] if checked is not None else ""
    _reindex(s, upload_id, old_text, new_text)
    if publish:
        s.info.setdefault("changes", set()).add(("upload_metadata", upload_id))
    if checked is None or content is None:
        if row is not None:
            s.delete(row)
        return None
    if row is None:
        row = UploadMetadata(upload_id=upload_id)
        s.add(row)
    row.account_id = account_id
    row.display, row.search_text, row.yaml = checked[0], checked[1], content
    row.updated_at = utcnow()
    return row


def stored_yaml(s: Session, upload_id: int) -> str | None:
    """The upload's holdfast.yaml as handed over, or None."""
    return s.scalar(select(UploadMetadata.yaml).where(UploadMetadata.upload_id == upload_id))


def _reindex(s: Session, upload_id: int, old_text: str, new_text: str) -> None:
    doc = s.scalar(
        select(SearchDocument).where(
            SearchDocument.kind == "upload", SearchDocument.ref_id == upload_id
        )
    )
    if doc is None:
        return
    body = doc.body
    if old_text and body.endswith(_SEPARATOR + old_text):
        body = body[: -len(_SEPARATOR + old_text)]
    doc.body = body + _SEPARATOR + new_text if new_text else body


def stored_display(instance: Instance, upload_id: int) -> dict[str, Any] | None:
    with instance.db.read() as s:
        row = s.get(UploadMetadata, upload_id)
        return None if row is None else dict(row.display)


def metadata_view(instance: Instance, upload_id: int) -> MetadataView | None:
    """The upload's metadata for its page, or None when none was handed over."""
    display = stored_display(instance, upload_id)
    return None if display is None else _view(display)


def dataset_metadata_views(instance: Instance, dataset_id: int) -> list[MetadataView]:
    """The metadata of the dataset's approved uploads, newest first (a few at most).

    The caller has checked that the viewer may see the dataset."""
    with instance.db.read() as s:
        rows = s.execute(
            select(UploadMetadata.display, Upload.name, Upload.infohash_v1, Upload.infohash_v2)
            .join(Upload, Upload.id == UploadMetadata.upload_id)
            .where(Upload.dataset_id == dataset_id, Upload.status == Status.approved.value)
            .order_by(Upload.id.desc())
            .limit(MAX_DATASET_SECTIONS)
        ).all()
    return [
        _view(dict(r.display), r.name, r.infohash_v2 or r.infohash_v1)
        for r in rows
        if isinstance(r.display, dict)
    ]


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and _HTTP_URL.fullmatch(value) else None


def _view(
    display: dict[str, Any], name: str | None = None, infohash: str | None = None
) -> MetadataView:
    shown = dict(display)
    shown["creators"] = [
        c
        | {
            "orcid_url": c.get("orcid_url")
            if isinstance(c.get("orcid_url"), str) and _ORCID_URL.fullmatch(c["orcid_url"])
            else None
        }
        for c in display.get("creators") or []
        if isinstance(c, dict)
    ]
    licence = display.get("license")
    shown["license"] = (
        licence | {"url": _url(licence.get("url"))} if isinstance(licence, dict) else None
    )
    shown["related_identifiers"] = [
        r | {"url": _url(r.get("url"))}
        for r in display.get("related_identifiers") or []
        if isinstance(r, dict)
    ]
    rows: list[dict[str, Any]] = []
    for f in display.get("files") or []:
        if not isinstance(f, dict):
            continue
        rows.append(f | {"kind": "file"})
        for a in f.get("arrays") or []:
            inner = str(a.get("array_path") or "").strip("/")
            rows.append(a | {"path": f"{f.get('path')}/{inner}", "format": None, "kind": "array"})
    shown["rows"] = rows
    description = display.get("description")
    html = render_markdown(description) if isinstance(description, str) else ""
    return MetadataView(shown, html, name, infohash)


__all__ = [
    "MetadataView",
    "check_yaml",
    "dataset_metadata_views",
    "metadata_view",
    "store_metadata",
    "stored_display",
]
