"""The catalogue service: datasets, their versions and parts, uploads and their files.

Every function validates everything first, then changes the database in one
transaction (`db.write()`), so a refused request changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, or_, select
from sqlalchemy.orm import Session, lazyload

from holdfast.accounts.models import Account
from holdfast.catalogue.access import can_edit, can_view, dataset_visible, upload_visible
from holdfast.catalogue.models import (
    Dataset,
    DatasetPart,
    DatasetVersion,
    SearchDocument,
    Status,
    Tag,
    TorrentBlob,
    Upload,
    UploadFile,
    dataset_tags,
)
from holdfast.catalogue.schemas import DatasetEdit, DatasetIn, PartIn, UploadIn, slugify
from holdfast.catalogue.text import path_index_text, render_markdown
from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from holdfast.moderation.service import record, refresh_upload_count
from holdfast.torrents import Torrent, TorrentError, parse_torrent

HEX40 = re.compile(r"^[0-9a-fA-F]{40}$")
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
VERSIONED_FIELDS = (
    "title",
    "description",
    "source_urls",
    "license",
    "publisher",
    "threat",
    "scarcity",
    "tags",
)
FILE_INSERT_BATCH = 5000
# Core inserts: no ORM bookkeeping for what can be 100,000 rows of one torrent.
upload_files_insert = insert(UploadFile)


def require_account(actor: Account | None, doing: str) -> Account:
    if actor is None:
        raise NotAuthenticated(f"log in to {doing}")
    if actor.disabled_at is not None:
        raise PermissionDenied("this account is disabled")
    return actor


def version_hash(data: dict[str, Any], parent_hash: str | None) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(((parent_hash or "") + canonical).encode("utf-8")).hexdigest()


def snapshot(dataset: Dataset) -> dict[str, Any]:
    return {
        "title": dataset.title,
        "description": dataset.description,
        "source_urls": list(dataset.source_urls),
        "license": dataset.license,
        "publisher": dataset.publisher,
        "threat": dataset.threat,
        "scarcity": dataset.scarcity,
        "tags": dataset.tag_names,
    }


def _tags(session: Session, names: list[str]) -> list[Tag]:
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    existing = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in existing:
            tag = Tag(name=name)
            session.add(tag)
            existing[name] = tag
    session.flush()
    return [existing[name] for name in wanted]


def _index_dataset(session: Session, dataset: Dataset) -> None:
    body = " ".join(
        [dataset.description, dataset.publisher, dataset.license, " ".join(dataset.tag_names)]
        + list(dataset.source_urls)
        + [f"{p.title} {p.slug}" for p in dataset.parts]
    )
    _upsert_document(session, "dataset", dataset.id, dataset.id, dataset.title, body, "")


def _upsert_document(
    session: Session, kind: str, ref_id: int, dataset_id: int, title: str, body: str, paths: str
) -> None:
    doc = session.scalar(
        select(SearchDocument).where(SearchDocument.kind == kind, SearchDocument.ref_id == ref_id)
    )
    if doc is None:
        session.add(
            SearchDocument(
                kind=kind, ref_id=ref_id, dataset_id=dataset_id, title=title, body=body, paths=paths
            )
        )
    else:
        doc.title, doc.body, doc.paths = title, body, paths


def parse_infohash(value: str) -> tuple[str, str]:
    """('v1' | 'v2' | 'short', lowercase hex) for a hash in a URL; NotFound otherwise."""
    if HEX64.match(value):
        return "v2", value.lower()
    if HEX40.match(value):
        return "short", value.lower()
    raise NotFound("no upload with that infohash (expected 40 or 64 hex digits)")


def _check_visible(
    viewer: Account | None, upload: Upload, dataset_status: str, dataset_account: int | None
) -> None:
    """NotFound or Gone unless `viewer` may see `upload` and its dataset."""
    if upload.status == Status.removed and not can_view(viewer, "removed", upload.account_id):
        raise Gone("this upload was removed")
    if not (
        can_view(viewer, upload.status, upload.account_id)
        and can_view(viewer, dataset_status, dataset_account)
    ):
        if dataset_status == Status.removed:
            raise Gone("this upload's dataset was removed")
        raise NotFound("no upload with that infohash")


def infohash_condition(value: str) -> Any:
    kind, hexhash = parse_infohash(value)
    if kind == "v2":
        return Upload.infohash_v2 == hexhash
    # 40 hex digits name a v1 hash, or the truncated v2 hash trackers use.
    return or_(Upload.infohash_v1 == hexhash, Upload.infohash_v2_short == hexhash)


# Listings count their matches only up to here ("10,000+ datasets"): an exact count of
# a large table costs a scan of it on every request, and nobody pages that far.
COUNT_CAP = 10_000
# Counting uploads joins each to its dataset (an upload is public only with it).
UPLOAD_COUNT_CAP = 1_000


@dataclass
class Page:
    """One page of a listing.

    `total` is exact when `total_exact`; otherwise it is the cap and there are more.
    `has_next` says whether a page follows this one, whatever the count.
    """

    items: list[Any]
    total: int
    offset: int
    limit: int
    total_exact: bool = True
    has_next: bool | None = None

    def __post_init__(self) -> None:
        if self.has_next is None:
            self.has_next = self.offset + len(self.items) < self.total


def capped_count(s: Session, query: Select[Any] | Any, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(number of rows `query` returns, counted up to `cap`; whether that is exact)."""
    n = int(s.scalar(select(func.count()).select_from(query.limit(cap + 1).subquery())) or 0)
    return min(n, cap), n <= cap


def page_of(
    s: Session,
    ids: list[int],
    rows: dict[int, Any],
    count_query: Select[Any],
    offset: int,
    limit: int,
    cap: int | None = None,
) -> Page:
    """A Page from the ids of one page plus one (to know if another follows), their rows
    by id, and a query for counting (run only when the ids do not settle the total)."""
    has_next = len(ids) > limit
    items = [rows[i] for i in ids[:limit] if i in rows]
    if not has_next and (items or offset == 0):
        return Page(items, offset + len(items), offset, limit, True, False)
    total, exact = capped_count(s, count_query, max(cap or COUNT_CAP, offset + len(items)))
    return Page(items, total, offset, limit, exact, has_next)


@dataclass
class Catalogue:
    db: Database
    max_torrent_bytes: int = 64 * 1024 * 1024

    # ------------------------------------------------------------------ datasets

    def create_dataset(self, actor: Account | None, data: DatasetIn) -> Dataset:
        actor = require_account(actor, "create a dataset")
        with self.db.write() as s:
            return self._insert_dataset(s, actor, data)

    def _insert_dataset(self, s: Session, actor: Account, data: DatasetIn) -> Dataset:
        slug = data.slug or slugify(data.title)
        if not slug:
            raise InvalidInput(
                "the title needs letters or digits to make a slug; give a slug",
                fields={"slug": "required"},
            )
        part_slugs = [p.slug for p in data.parts]
        if len(set(part_slugs)) != len(part_slugs):
            raise InvalidInput("part slugs must be unique", fields={"parts": "duplicate slug"})
        if s.scalar(select(Dataset.id).where(Dataset.slug == slug)) is not None:
            raise Conflict(
                f"a dataset with the slug '{slug}' already exists", fields={"slug": "taken"}
            )
        dataset = Dataset(
            slug=slug,
            title=data.title,
            description=data.description,
            description_html=render_markdown(data.description),
            source_urls=list(data.source_urls),
            license=data.license,
            publisher=data.publisher,
            threat=data.threat.value,
            scarcity=data.scarcity.value,
            status=(Status.approved if actor.publishes_directly else Status.pending).value,
            account_id=actor.id,
        )
        dataset.tags = _tags(s, list(data.tags))
        s.add(dataset)
        s.flush()
        for part in data.parts:
            s.add(
                DatasetPart(
                    dataset_id=dataset.id,
                    slug=part.slug,
                    title=part.title,
                    description=part.description,
                )
            )
        s.flush()
        s.refresh(dataset)
        data_snapshot = snapshot(dataset)
        s.add(
            DatasetVersion(
                dataset_id=dataset.id,
                number=1,
                account_id=actor.id,
                summary="created",
                data=data_snapshot,
                content_hash=version_hash(data_snapshot, None),
                parent_hash=None,
            )
        )
        _index_dataset(s, dataset)
        record(s, actor, "dataset.create", "dataset", dataset.id, detail={"slug": slug})
        s.flush()
        return dataset

    def _visible_dataset(self, s: Session, viewer: Account | None, slug: str) -> Dataset:
        dataset = s.scalar(select(Dataset).where(Dataset.slug == slug))
        if dataset is None or not can_view(viewer, dataset.status, dataset.account_id):
            if dataset is not None and dataset.status == Status.removed:
                raise Gone(f"the dataset '{slug}' was removed")
            raise NotFound(f"no dataset '{slug}'")
        return dataset

    def get_dataset(self, viewer: Account | None, slug: str) -> Dataset:
        with self.db.read() as s:
            return self._visible_dataset(s, viewer, slug)

    def edit_dataset(self, actor: Account | None, slug: str, edit: DatasetEdit) -> Dataset:
        actor = require_account(actor, "edit a dataset")
        changes = edit.model_dump(exclude_unset=True, exclude={"summary", "base_version"})
        if not changes:
            raise InvalidInput("nothing to change")
        with self.db.write() as s:
            dataset = self._visible_dataset(s, actor, slug)
            if not can_edit(actor, dataset.status, dataset.account_id):
                raise PermissionDenied("only the submitter or a moderator can edit this dataset")
            if edit.base_version is not None and edit.base_version != dataset.version:
                raise Conflict(
                    f"this dataset changed since version {edit.base_version} "
                    f"(now version {dataset.version}); reload and edit again"
                )
            before = snapshot(dataset)
            for field in ("title", "license", "publisher"):
                if field in changes:
                    setattr(dataset, field, changes[field])
            if "description" in changes:
                dataset.description = changes["description"]
                dataset.description_html = render_markdown(changes["description"])
            if "source_urls" in changes:
                dataset.source_urls = list(changes["source_urls"])
            for field in ("threat", "scarcity"):
                if field in changes:
                    setattr(dataset, field, str(changes[field]))
            if "tags" in changes:
                dataset.tags = _tags(s, list(changes["tags"]))
            after = snapshot(dataset)
            if after == before:
                raise InvalidInput("the edit changes nothing")
            parent = s.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == dataset.id,
                    DatasetVersion.number == dataset.version,
                )
            )
            parent_hash = parent.content_hash if parent else None
            dataset.version += 1
            dataset.updated_at = utcnow()
            s.add(
                DatasetVersion(
                    dataset_id=dataset.id,
                    number=dataset.version,
                    account_id=actor.id,
                    summary=edit.summary,
                    data=after,
                    content_hash=version_hash(after, parent_hash),
                    parent_hash=parent_hash,
                )
            )
            _index_dataset(s, dataset)
            s.flush()
            return dataset

    def versions(
        self, viewer: Account | None, slug: str, *, offset: int = 0, limit: int = 50
    ) -> Page:
        """A dataset's versions, newest first, a page at a time.

        Version numbers run from 1 without gaps, so the dataset's current number is the
        total and the page is a range of numbers, read from the unique index.
        """
        if offset < 0 or not 1 <= limit <= 1000:
            raise InvalidInput("offset must be 0 or more and limit 1 to 1000")
        with self.db.read() as s:
            dataset = self._visible_dataset(s, viewer, slug)
            newest = dataset.version - offset
            rows = list(
                s.scalars(
                    select(DatasetVersion)
                    .where(
                        DatasetVersion.dataset_id == dataset.id,
                        DatasetVersion.number <= newest,
                    )
                    .order_by(DatasetVersion.number.desc())
                    .limit(limit)
                )
            )
        return Page(rows, dataset.version, offset, limit)

    def add_part(self, actor: Account | None, slug: str, part: PartIn) -> DatasetPart:
        actor = require_account(actor, "add a part")
        with self.db.write() as s:
            dataset = self._visible_dataset(s, actor, slug)
            if not can_edit(actor, dataset.status, dataset.account_id):
                raise PermissionDenied("only the submitter or a moderator can add parts")
            exists = s.scalar(
                select(DatasetPart.id).where(
                    DatasetPart.dataset_id == dataset.id, DatasetPart.slug == part.slug
                )
            )
            if exists is not None:
                raise Conflict(f"the part '{part.slug}' exists", fields={"slug": "taken"})
            row = DatasetPart(
                dataset_id=dataset.id,
                slug=part.slug,
                title=part.title,
                description=part.description,
            )
            s.add(row)
            dataset.updated_at = utcnow()
            s.flush()
            s.refresh(dataset)
            _index_dataset(s, dataset)
            return row

    def list_datasets(
        self,
        viewer: Account | None,
        *,
        offset: int = 0,
        limit: int = 50,
        tag: str | None = None,
        threat: str | None = None,
        sort: str = "updated",
        account_id: int | None = None,
    ) -> Page:
        order: Any = {
            "updated": Dataset.updated_at.desc(),
            "created": Dataset.created_at.desc(),
            "title": Dataset.title.asc(),
            "uploads": Dataset.upload_count.desc(),
        }.get(sort)
        if order is None:
            raise InvalidInput("sort must be one of updated, created, title, uploads")
        condition = [dataset_visible(viewer), Dataset.status != Status.removed.value]
        if threat:
            condition.append(Dataset.threat == threat)
        if account_id is not None:
            condition.append(Dataset.account_id == account_id)
        query: Select[Any] = select(Dataset.id).where(*condition)
        if tag:
            query = query.where(
                Dataset.id.in_(
                    select(dataset_tags.c.dataset_id)
                    .join(Tag, Tag.id == dataset_tags.c.tag_id)
                    .where(Tag.name == tag)
                )
            )
        with self.db.read() as s:
            # Ids first (an index walk or a narrow sort), then the page's rows by id.
            ids = list(
                s.scalars(query.order_by(order, Dataset.id.desc()).offset(offset).limit(limit + 1))
            )
            rows = (
                {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(ids)))}
                if ids
                else {}
            )
            return page_of(s, ids, rows, query, offset, limit)

    def tags(self, viewer: Account | None, *, offset: int = 0, limit: int = 200) -> Page:
        """Tags with the number of visible datasets carrying each, most used first;
        items are (name, count) pairs."""
        query = (
            select(Tag.name, func.count(Dataset.id).label("n"))
            .join(dataset_tags, dataset_tags.c.tag_id == Tag.id)
            .join(Dataset, Dataset.id == dataset_tags.c.dataset_id)
            .where(dataset_visible(viewer), Dataset.status != Status.removed.value)
            .group_by(Tag.name)
        )
        with self.db.read() as s:
            rows = s.execute(
                query.order_by(func.count(Dataset.id).desc(), Tag.name)
                .offset(offset)
                .limit(limit + 1)
            ).all()
            items = [(name, int(n)) for name, n in rows[:limit]]
            if len(rows) <= limit and (items or offset == 0):
                return Page(items, offset + len(items), offset, limit, True, False)
            total, exact = capped_count(s, query, max(COUNT_CAP, offset + len(items)))
        return Page(items, total, offset, limit, exact, len(rows) > limit)

    # ------------------------------------------------------------------- uploads

    def parse(self, torrent_bytes: bytes) -> Torrent:
        if len(torrent_bytes) > self.max_torrent_bytes:
            raise PayloadTooLarge(
                f"the .torrent file is larger than {self.max_torrent_bytes} bytes",
                fields={"torrent": "too large"},
            )
        if not torrent_bytes:
            raise InvalidInput("the .torrent file is empty", fields={"torrent": "empty"})
        try:
            return parse_torrent(torrent_bytes)
        except TorrentError as exc:
            raise InvalidInput(
                f"not a valid .torrent file: {exc}", fields={"torrent": str(exc)}
            ) from exc

    def create_upload(
        self, actor: Account | None, fields: UploadIn, torrent_bytes: bytes
    ) -> Upload:
        actor = require_account(actor, "upload")
        torrent = self.parse(torrent_bytes)
        with self.db.write() as s:
            return self._insert_upload(s, actor, fields, torrent, torrent_bytes)

    def check_torrent(self, actor: Account | None, torrent_bytes: bytes) -> Torrent:
        """Parse a submitted .torrent and refuse one already in the catalogue.

        For forms that report every problem at once before storing anything; `publish`
        checks again inside its transaction.
        """
        actor = require_account(actor, "upload")
        torrent = self.parse(torrent_bytes)
        with self.db.read() as s:
            self._refuse_duplicate(s, actor, torrent)
        return torrent

    def publish(
        self,
        actor: Account | None,
        fields: UploadIn,
        torrent: Torrent,
        torrent_bytes: bytes,
        *,
        new_dataset: DatasetIn | None = None,
    ) -> Upload:
        """Store an upload, creating its dataset first when `new_dataset` is given.

        One transaction: if the upload is refused (a duplicate published at the same
        moment, say), the new dataset is not created either. `torrent` must be the
        parse of `torrent_bytes` (from `check_torrent`), so a large torrent is parsed once.
        """
        actor = require_account(actor, "publish")
        with self.db.write() as s:
            if new_dataset is not None:
                dataset = self._insert_dataset(s, actor, new_dataset)
                fields = fields.model_copy(update={"dataset": dataset.slug})
            return self._insert_upload(s, actor, fields, torrent, torrent_bytes)

    def _insert_upload(
        self,
        s: Session,
        actor: Account,
        fields: UploadIn,
        torrent: Torrent,
        torrent_bytes: bytes,
    ) -> Upload:
        dataset = self._visible_dataset(s, actor, fields.dataset)
        if dataset.status == Status.removed:
            raise Gone("the dataset was removed")
        parts: list[DatasetPart] = []
        if fields.parts:
            by_slug = {p.slug: p for p in dataset.parts}
            missing = [slug for slug in fields.parts if slug not in by_slug]
            if missing:
                raise InvalidInput(
                    f"no part {', '.join(missing)} in this dataset", fields={"parts": "unknown"}
                )
            parts = [by_slug[slug] for slug in dict.fromkeys(fields.parts)]
        self._refuse_duplicate(s, actor, torrent)
        upload = upload_row(
            torrent,
            dataset_id=dataset.id,
            account_id=actor.id,
            description=fields.description,
            status=(Status.approved if actor.publishes_directly else Status.pending).value,
            method=fields.method,
        )
        upload.parts = parts
        s.add(upload)
        s.flush()
        s.add(TorrentBlob(upload_id=upload.id, data=torrent_bytes))
        all_paths = add_upload_files(s, upload.id, torrent)
        paths = path_index_text(all_paths)
        body = " ".join([fields.description, dataset.title, torrent.comment or ""])
        _upsert_document(s, "upload", upload.id, dataset.id, torrent.name, body, paths)
        dataset.updated_at = utcnow()
        refresh_upload_count(s, dataset.id)
        record(
            s,
            actor,
            "upload.create",
            "upload",
            upload.id,
            detail={"infohash": upload.infohash, "dataset": dataset.slug},
        )
        s.flush()
        return upload

    def _refuse_duplicate(self, s: Session, actor: Account, torrent: Torrent) -> None:
        conditions = []
        if torrent.infohash_v1:
            conditions.append(Upload.infohash_v1 == torrent.infohash_v1)
        if torrent.infohash_v2:
            conditions.append(Upload.infohash_v2 == torrent.infohash_v2)
        existing = s.scalar(select(Upload).where(or_(*conditions)))
        if existing is None:
            return
        # Never reveal (or take over) an upload the submitter may not see.
        where = ""
        if can_view(actor, existing.status, existing.account_id) and existing.status != "removed":
            where = f" as /uploads/{existing.infohash}"
        raise Conflict(
            f"this torrent is already in the catalogue{where}", fields={"torrent": "duplicate"}
        )

    def replace_upload(
        self, actor: Account | None, infohash: str, fields: UploadIn | None, torrent_bytes: bytes
    ) -> Upload:
        """Replace an upload's torrent with a corrected one.

        The new torrent is parsed and checked before anything changes; then, in one
        transaction, the new upload is added and the old one removed (a tombstone that
        points at its replacement). A rejected replacement leaves the old upload as it was.
        """
        actor = require_account(actor, "replace an upload")
        torrent = self.parse(torrent_bytes)
        with self.db.write() as s:
            old = self._visible_upload(s, actor, infohash)
            if not can_edit(actor, old.status, old.account_id):
                raise PermissionDenied("only the submitter or a moderator can replace this upload")
            if fields is None:
                fields = UploadIn(
                    dataset=old.dataset.slug,
                    description=old.description,
                    method=old.method,
                    parts=[p.slug for p in old.parts],
                )
            new = self._insert_upload(s, actor, fields, torrent, torrent_bytes)
            old.status = Status.removed.value
            old.removed_at = utcnow()
            old.moderation_note = f"replaced by {new.infohash}"
            record(
                s,
                actor,
                "upload.replace",
                "upload",
                old.id,
                detail={"replacement": new.infohash},
            )
            refresh_upload_count(s, old.dataset_id)
            s.flush()
            return new

    def _visible_upload(self, s: Session, viewer: Account | None, infohash: str) -> Upload:
        upload = s.scalar(select(Upload).where(infohash_condition(infohash)))
        if upload is None:
            raise NotFound("no upload with that infohash")
        _check_visible(viewer, upload, upload.dataset.status, upload.dataset.account_id)
        return upload

    def get_upload(self, viewer: Account | None, infohash: str) -> Upload:
        with self.db.read() as s:
            return self._visible_upload(s, viewer, infohash)

    def torrent_bytes(self, viewer: Account | None, infohash: str) -> tuple[Upload, bytes]:
        """The upload (its own columns only: no dataset, parts or account) and its
        .torrent, in one read; peers backfilling a catalogue ask for thousands."""
        with self.db.read() as s:
            row = s.execute(
                select(Upload, Dataset.status, Dataset.account_id, TorrentBlob.data)
                .join(Dataset, Dataset.id == Upload.dataset_id)
                .outerjoin(TorrentBlob, TorrentBlob.upload_id == Upload.id)
                .where(infohash_condition(infohash))
                .options(lazyload("*"))
            ).first()
            if row is None:
                raise NotFound("no upload with that infohash")
            upload, dataset_status, dataset_account, data = row
            _check_visible(viewer, upload, dataset_status, dataset_account)
            if data is None:
                raise NotFound("the .torrent file of this upload is missing")
            return upload, data

    def upload_files(
        self,
        viewer: Account | None,
        infohash: str,
        *,
        offset: int = 0,
        limit: int = 100,
        prefix: str | None = None,
    ) -> Page:
        with self.db.read() as s:
            upload = self._visible_upload(s, viewer, infohash)
            condition = [UploadFile.upload_id == upload.id]
            if prefix:
                escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                condition.append(UploadFile.path.like(escaped + "%", escape="\\"))
            total = (
                upload.file_count
                if not prefix
                else int(s.scalar(select(func.count()).where(*condition)) or 0)
            )
            rows = list(
                s.scalars(
                    select(UploadFile)
                    .where(*condition)
                    .order_by(UploadFile.idx)
                    .offset(offset)
                    .limit(limit)
                )
            )
        return Page(rows, total, offset, limit)

    def list_uploads(
        self,
        viewer: Account | None,
        *,
        dataset: str | None = None,
        offset: int = 0,
        limit: int = 50,
        sort: str = "created",
    ) -> Page:
        order: Any = {
            "created": [Upload.created_at.desc(), Upload.id.desc()],
            "size": [Upload.total_size.desc(), Upload.id.desc()],
            # Fewest seeders first, never-measured swarms last (the feeds' order).
            "seeders": [
                Upload.seeders.is_(None),
                Upload.seeders.asc(),
                Upload.created_at.desc(),
                Upload.id.desc(),
            ],
        }.get(sort)
        if order is None:
            raise InvalidInput("sort must be one of created, size, seeders")
        condition = [upload_visible(viewer), Upload.status != Status.removed.value]
        with self.db.read() as s:
            if dataset is not None:
                ds = self._visible_dataset(s, viewer, dataset)
                condition.append(Upload.dataset_id == ds.id)
            query = (
                select(Upload.id).join(Dataset, Dataset.id == Upload.dataset_id).where(*condition)
            )
            ids = list(s.scalars(query.order_by(*order).offset(offset).limit(limit + 1)))
            rows = (
                {u.id: u for u in s.scalars(select(Upload).where(Upload.id.in_(ids)))}
                if ids
                else {}
            )
            return page_of(s, ids, rows, query, offset, limit, UPLOAD_COUNT_CAP)


def upload_row(
    torrent: Torrent,
    *,
    dataset_id: int,
    account_id: int | None,
    description: str,
    status: str,
    method: str = "",
) -> Upload:
    """A new Upload of a parsed torrent (added by someone here, or mirrored from a
    peer with no account): its columns from the torrent, bounded where it is free text."""
    return Upload(
        dataset_id=dataset_id,
        account_id=account_id,
        infohash_v1=torrent.infohash_v1,
        infohash_v2=torrent.infohash_v2,
        infohash_v2_short=torrent.infohash_v2[:40] if torrent.infohash_v2 else None,
        torrent_version=torrent.version,
        name=torrent.name,
        total_size=torrent.total_size,
        file_count=torrent.file_count,
        piece_length=torrent.piece_length,
        private=torrent.private,
        trackers=[list(tier) for tier in torrent.trackers],
        webseeds=list(torrent.webseeds),
        comment=(torrent.comment or "")[:10_000],
        created_by=(torrent.created_by or "")[:200],
        creation_date=_timestamp(torrent.creation_date),
        description=description,
        description_html=render_markdown(description),
        method=method,
        status=status,
    )


def add_upload_files(s: Session, upload_id: int, torrent: Torrent) -> list[str]:
    """Insert the upload's file rows (in batches: a torrent can hold 100,000 files) in
    one pass over the torrent's file list; returns their paths."""
    paths: list[str] = []
    batch: list[dict[str, Any]] = []
    for idx, f in enumerate(torrent.files):
        paths.append(f.path)
        batch.append({"upload_id": upload_id, "idx": idx, "path": f.path, "size": f.size})
        if len(batch) >= FILE_INSERT_BATCH:
            s.connection().execute(upload_files_insert, batch)
            batch = []
    if batch:
        s.connection().execute(upload_files_insert, batch)
    return paths


def _timestamp(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
