"""The instance's side of streaming arrays: zarr metadata served without the swarm.

- `GET /api/v1/uploads/{infohash}/zarr-metadata`: the zarr metadata documents of an
  upload (zarr.json, and .zgroup/.zarray/.zattrs/.zmetadata of zarr v2) as exact text,
  for whoever may see the upload. A reader opening an instance upload URL takes them,
  so opening an array moves nothing from the swarm.
- `POST /api/v1/uploads/{infohash}/zarr-metadata`: the uploader (or a moderator) hands
  them over after publishing, e.g. `holdfast publish` with
  holdfast.arrays.publish.prepare_publication(...).metadata_files.
- `GET /api/v1/uploads/{infohash}/metadata`, `POST` (uploader or moderator): the
  upload's holdfast.yaml, checked against the torrent and validated, shown on the
  dataset and upload pages and indexed for search (holdfast.arrays.stored).

Every document is checked against the upload's torrent piece hashes before it is stored
or served, so the instance can only ever hand out the torrent's own bytes; a document
whose pieces also hold another file (an unaligned v1 torrent) cannot be checked and is
refused. Documents handed over are kept in `<storage_dir>/zarr-metadata/<infohash>.json`;
without them, the ones the instance's seeder holds under `<storage_dir>/<infohash>/` are
served. The instance fetches nothing from elsewhere for this.

Imports only the standard library, FastAPI, SQLAlchemy and holdfast's own code: it runs
on instances installed without the `arrays` extra (whose jsonschema reading holdfast.yaml
needs; without it the file is refused with a clear error).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from holdfast.api.deps import CurrentAccount, InstanceDep, RequireAccount
from holdfast.catalogue.access import can_edit
from holdfast.errors import InvalidInput, PermissionDenied
from holdfast.instance import Instance
from holdfast.torrents import Torrent, parse_torrent

METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_DOCUMENTS = 10_000
_HEX = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_CACHED = 256

router = APIRouter(tags=["uploads"])


class MetadataDocument(BaseModel):
    path: str = Field(description="The document's path in the torrent.", max_length=4096)
    content: str = Field(description="Its exact text (UTF-8).")


class ZarrMetadataIn(BaseModel):
    files: list[MetadataDocument] = Field(max_length=MAX_DOCUMENTS)


class ZarrMetadataOut(BaseModel):
    infohash: str
    source: Literal["published", "seeder", "none"] = Field(
        description="Where the documents come from: handed over by the uploader, read "
        "from the instance's seeder, or none known."
    )
    files: list[MetadataDocument]


def is_metadata_path(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in METADATA_NAMES


class _Answers:
    """Recent answers per upload, dropped when documents are handed over."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, ZarrMetadataOut] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> ZarrMetadataOut | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: ZarrMetadataOut) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > _CACHED:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


def _answers(instance: Instance) -> _Answers:
    found = instance.services.get("zarr_metadata")
    if not isinstance(found, _Answers):
        found = _Answers()
        instance.services["zarr_metadata"] = found
    return found


def _published_file(instance: Instance, infohash: str) -> Path:
    if not _HEX.match(infohash):  # the catalogue's own infohashes; never a path
        raise InvalidInput("not an infohash")
    return instance.settings.resolved_storage_dir / "zarr-metadata" / f"{infohash}.json"


def check_documents(torrent: Torrent, documents: list[MetadataDocument]) -> list[MetadataDocument]:
    """The documents, each checked to be the torrent's own file; InvalidInput otherwise."""
    from holdfast.arrays.pieces import PieceMap

    pieces = PieceMap(torrent)
    fields: dict[str, str] = {}
    seen: set[str] = set()
    total = 0
    for i, doc in enumerate(documents):
        key = f"files[{i}]"
        data = doc.content.encode("utf-8")
        total += len(data)
        if doc.path in seen:
            fields[key] = f"{doc.path!r} is given twice"
        elif not is_metadata_path(doc.path):
            fields[key] = "only zarr metadata documents (zarr.json, .zgroup, ...) are kept"
        elif doc.path not in pieces.index:
            fields[key] = f"{doc.path!r} is not a file of this torrent"
        elif len(data) > MAX_DOCUMENT_BYTES:
            fields[key] = f"larger than {MAX_DOCUMENT_BYTES} bytes"
        elif pieces.file_pieces(pieces.index[doc.path], data) is None:
            fields[key] = f"{doc.path!r} does not match the torrent's piece hashes"
        seen.add(doc.path)
    if total > MAX_TOTAL_BYTES:
        fields["files"] = f"larger than {MAX_TOTAL_BYTES} bytes in all"
    if fields:
        raise InvalidInput("some metadata documents cannot be kept", fields=fields)
    return documents


def _seeded_documents(instance: Instance, infohash: str, torrent: Torrent) -> list[Any]:
    """The metadata documents of the torrent in the seeder's folder, those that verify."""
    from holdfast.arrays.pieces import PieceMap

    base = (instance.settings.resolved_storage_dir / infohash).resolve()
    if not base.is_dir():
        return []
    pieces = PieceMap(torrent)
    found: list[MetadataDocument] = []
    total = 0
    for path, index in pieces.index.items():
        if not is_metadata_path(path) or len(found) >= MAX_DOCUMENTS:
            continue
        size = pieces.file(index).size
        if size > MAX_DOCUMENT_BYTES or total + size > MAX_TOTAL_BYTES:
            continue
        target = (base / path).resolve()
        if not target.is_relative_to(base) or target.is_symlink():
            continue
        try:
            data = target.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if pieces.file_pieces(index, data) is not None:
            found.append(MetadataDocument(path=path, content=text))
            total += size
    return found


@router.get("/uploads/{infohash}/zarr-metadata", response_model=ZarrMetadataOut)
def zarr_metadata(infohash: str, viewer: CurrentAccount, instance: InstanceDep) -> ZarrMetadataOut:
    """The zarr metadata documents of an upload, as exact text checked against its torrent,
    so that opening its arrays needs nothing from the swarm."""
    upload, data = instance.catalogue.torrent_bytes(viewer, infohash)
    key = upload.infohash
    answers = _answers(instance)
    cached = answers.get(key)
    if cached is not None:
        return cached
    stored = _published_file(instance, key)
    answer: ZarrMetadataOut
    if stored.is_file():
        documents = json.loads(stored.read_text("utf-8"))
        answer = ZarrMetadataOut(
            infohash=key,
            source="published",
            files=[MetadataDocument.model_validate(d) for d in documents],
        )
    else:
        seeded = _seeded_documents(instance, key, parse_torrent(data))
        answer = ZarrMetadataOut(infohash=key, source="seeder" if seeded else "none", files=seeded)
    if answer.files:  # "none" may change when the seeder gets the files
        answers.put(key, answer)
    return answer


@router.post("/uploads/{infohash}/zarr-metadata", response_model=ZarrMetadataOut)
def store_zarr_metadata(
    infohash: str, body: ZarrMetadataIn, actor: RequireAccount, instance: InstanceDep
) -> ZarrMetadataOut:
    """Hand over the zarr metadata documents of your upload (each must match the torrent's
    piece hashes). Replaces those handed over before; an empty list removes them."""
    upload, data = instance.catalogue.torrent_bytes(actor, infohash)
    if not can_edit(actor, upload.status, upload.account_id):
        raise PermissionDenied("only the uploader or a moderator may change this upload")
    documents = check_documents(parse_torrent(data), body.files)
    key = upload.infohash
    target = _published_file(instance, key)
    if documents:
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps([d.model_dump() for d in documents], ensure_ascii=False)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(payload)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    else:
        target.unlink(missing_ok=True)
    _answers(instance).drop(key)
    return ZarrMetadataOut(
        infohash=key, source="published" if documents else "none", files=documents
    )


class UploadMetadataIn(BaseModel):
    content: str | None = Field(
        description="The exact text of the torrent's `<name>/holdfast.yaml`; null forgets "
        "what was handed over before.",
        max_length=1024 * 1024,
    )


class UploadMetadataOut(BaseModel):
    infohash: str
    metadata: dict[str, Any] | None = Field(
        description="The fields the pages show (title, description, creators, license, "
        "keywords, coverage, related_identifiers, files with shapes, dtypes and units), "
        "or null when none was handed over."
    )


@router.get("/uploads/{infohash}/metadata", response_model=UploadMetadataOut)
def upload_metadata(
    infohash: str, viewer: CurrentAccount, instance: InstanceDep
) -> UploadMetadataOut:
    """The upload's holdfast.yaml as the instance keeps it (checked against its torrent)."""
    from holdfast.arrays.stored import stored_display

    upload = instance.catalogue.get_upload(viewer, infohash)
    return UploadMetadataOut(infohash=upload.infohash, metadata=stored_display(instance, upload.id))


@router.post("/uploads/{infohash}/metadata", response_model=UploadMetadataOut)
def store_upload_metadata(
    infohash: str, body: UploadMetadataIn, actor: RequireAccount, instance: InstanceDep
) -> UploadMetadataOut:
    """Hand over your upload's holdfast.yaml: it must be the torrent's own file and valid
    (errors name the line and field). The pages show it and search finds its words."""
    from holdfast.arrays.stored import store_metadata

    upload, data = instance.catalogue.torrent_bytes(actor, infohash)
    if not can_edit(actor, upload.status, upload.account_id):
        raise PermissionDenied("only the uploader or a moderator may change this upload")
    row = store_metadata(instance, actor, upload, parse_torrent(data), body.content)
    return UploadMetadataOut(
        infohash=upload.infohash, metadata=None if row is None else dict(row.display)
    )


def install(app: FastAPI, instance: Instance) -> None:
    app.include_router(router, prefix="/api/v1")


__all__ = ["check_documents", "install", "is_metadata_path", "router"]
