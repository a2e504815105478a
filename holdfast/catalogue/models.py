"""The catalogue: datasets, their parts and versions, uploads and their files, tags."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from holdfast.accounts.models import Account
from holdfast.db.base import Base, utcnow


class Status(StrEnum):
    """Where an item stands in moderation. Only `approved` items are public."""

    pending = "pending"
    approved = "approved"
    denied = "denied"
    removed = "removed"


class Threat(StrEnum):
    """How endangered the data is at its source."""

    unknown = "unknown"
    safe = "safe"
    endangered = "endangered"
    extinct = "extinct"


class Scarcity(StrEnum):
    """How many other copies are known to exist."""

    unknown = "unknown"
    common = "common"
    uncommon = "uncommon"
    rare = "rare"
    unique = "unique"


dataset_tags = Table(
    "dataset_tags",
    Base.metadata,
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)

upload_parts = Table(
    "upload_parts",
    Base.metadata,
    Column("upload_id", ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("part_id", ForeignKey("dataset_parts.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Dataset(Base):
    __tablename__ = "datasets"
    # Listings filter on status and sort by date: these indexes give the newest visible
    # datasets in order without sorting the table (tie-break on id, as the queries do).
    __table_args__ = (
        Index("ix_datasets_status_updated", "status", "updated_at", "id"),
        Index("ix_datasets_status_created", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    description_html: Mapped[str] = mapped_column(Text, default="")
    source_urls: Mapped[list[str]] = mapped_column(default=list)
    license: Mapped[str] = mapped_column(String(100), default="")
    publisher: Mapped[str] = mapped_column(String(300), default="")
    threat: Mapped[str] = mapped_column(String(16), default=Threat.unknown.value, index=True)
    scarcity: Mapped[str] = mapped_column(String(16), default=Scarcity.unknown.value)
    status: Mapped[str] = mapped_column(String(16), default=Status.pending.value, index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(default=1)
    upload_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)
    moderation_note: Mapped[str] = mapped_column(Text, default="")

    account: Mapped[Account | None] = relationship(lazy="joined")
    tags: Mapped[list[Tag]] = relationship(
        secondary=dataset_tags, lazy="selectin", order_by=Tag.name
    )
    parts: Mapped[list[DatasetPart]] = relationship(
        back_populates="dataset", lazy="selectin", order_by="DatasetPart.slug"
    )

    @property
    def tag_names(self) -> list[str]:
        return [tag.name for tag in self.tags]


class DatasetVersion(Base):
    """An immutable snapshot of a dataset's editable fields, one per edit."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    number: Mapped[int]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(String(300), default="")
    data: Mapped[dict[str, Any]]
    # sha256 of the canonical JSON of `data` and of the parent version's hash
    content_hash: Mapped[str] = mapped_column(String(64))
    parent_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    account: Mapped[Account | None] = relationship(lazy="joined")


class DatasetPart(Base):
    __tablename__ = "dataset_parts"
    __table_args__ = (UniqueConstraint("dataset_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="parts")


class Upload(Base):
    """One torrent attached to a dataset. Its content never changes."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_status_created", "status", "created_at", "id"),
        # A dataset's uploads, newest first (without it the planner walks every upload
        # by date looking for the dataset's).
        Index("ix_uploads_dataset_created", "dataset_id", "created_at", "id"),
        # "Needs seeders": fewest seeders first, never-measured swarms last.
        Index(
            "ix_uploads_status_seeders",
            "status",
            text("(seeders IS NULL)"),
            "seeders",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    infohash_v1: Mapped[str | None] = mapped_column(String(40), unique=True)
    infohash_v2: Mapped[str | None] = mapped_column(String(64), unique=True)
    # First 40 hex digits of the v2 hash: what trackers and v1-style clients use.
    infohash_v2_short: Mapped[str | None] = mapped_column(String(40), index=True)
    torrent_version: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(Text)
    total_size: Mapped[int] = mapped_column(index=True)
    file_count: Mapped[int]
    piece_length: Mapped[int]
    private: Mapped[bool] = mapped_column(default=False)
    trackers: Mapped[list[list[str]]] = mapped_column(default=list)
    webseeds: Mapped[list[str]] = mapped_column(default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    creation_date: Mapped[datetime | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    description_html: Mapped[str] = mapped_column(Text, default="")
    method: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.pending.value, index=True)
    seeders: Mapped[int | None] = mapped_column(default=None)
    leechers: Mapped[int | None] = mapped_column(default=None)
    completed: Mapped[int | None] = mapped_column(default=None)
    swarm_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)
    moderation_note: Mapped[str] = mapped_column(Text, default="")

    dataset: Mapped[Dataset] = relationship(lazy="joined")
    account: Mapped[Account | None] = relationship(lazy="joined")
    parts: Mapped[list[DatasetPart]] = relationship(secondary=upload_parts, lazy="selectin")

    @property
    def infohash(self) -> str:
        """The hash that names this upload: v2 when it has one, else v1."""
        return self.infohash_v2 or self.infohash_v1 or ""


class TorrentBlob(Base):
    """The original .torrent bytes, kept so the file served back has the same infohash.

    Kept apart from `uploads` so listing uploads never reads megabytes of torrent.
    """

    __tablename__ = "torrent_blobs"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class UploadFile(Base):
    """One file inside an upload's torrent (pad files excluded)."""

    __tablename__ = "upload_files"
    __table_args__ = (Index("ix_upload_files_upload_path", "upload_id", "path"),)

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int]


class SearchDocument(Base):
    """The text search indexes, one row per dataset or upload.

    On SQLite an FTS5 table mirrors it (triggers keep them in step); on PostgreSQL a
    generated tsvector column with a GIN index sits on this table. Both are created by
    the migrations, not by the models.
    """

    __tablename__ = "search_documents"
    __table_args__ = (UniqueConstraint("kind", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "dataset" or "upload"
    ref_id: Mapped[int]
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    paths: Mapped[str] = mapped_column(Text, default="")
