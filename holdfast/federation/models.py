"""Federation tables: keys, peers, follows, the outbox, and every object seen.

Catalogue rows stay the catalogue's; these tables point at them. An object's JSON
is kept exactly as it was produced or received, so its proof stays verifiable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from holdfast.db.base import Base, utcnow


class FederationKeys(Base):
    """The instance's private keys (one row), PKCS#8 PEM."""

    __tablename__ = "federation_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    rsa_private_pem: Mapped[str] = mapped_column(Text)
    ed25519_private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Trust(StrEnum):
    auto = "auto"  # objects from this peer are published at once
    review = "review"  # objects wait in the moderation queue


class Peer(Base):
    """A remote actor we know: cached actor document, policy and replication cursor."""

    __tablename__ = "federation_peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(2048), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    inbox: Mapped[str] = mapped_column(String(2048), default="")
    shared_inbox: Mapped[str] = mapped_column(String(2048), default="")
    outbox: Mapped[str] = mapped_column(String(2048), default="")
    actor_json: Mapped[str] = mapped_column(Text, default="")
    # The Ed25519 key the actor proves its objects with ("z6Mk..."); pinned once known.
    did_key: Mapped[str] = mapped_column(String(128), default="")
    fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    trust: Mapped[str] = mapped_column(String(16), default=Trust.auto.value)
    blocked: Mapped[bool] = mapped_column(default=False)
    allowed: Mapped[bool] = mapped_column(default=False)
    unreachable_since: Mapped[datetime | None] = mapped_column(default=None)
    # The last outbox position read (`after` cursor of a holdfast outbox).
    cursor: Mapped[int] = mapped_column(default=0)
    synced_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FollowState(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class Follow(Base):
    """A follow between this instance and a peer: `inbound` (they follow us) or `outbound`."""

    __tablename__ = "federation_follows"
    __table_args__ = (UniqueConstraint("peer_id", "direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("federation_peers.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # inbound / outbound
    activity_id: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default=FollowState.pending.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxItem(Base):
    """One activity this instance published, in order; `id` is the outbox cursor."""

    __tablename__ = "federation_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(2048), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(2048), default="", index=True)
    # Whether the item is public (listed in the outbox) or addressed to one peer.
    public: Mapped[bool] = mapped_column(default=True)
    json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ObjectState(StrEnum):
    current = "current"  # the live form of the object
    superseded = "superseded"  # an older dataset version
    fork = "fork"  # a dataset edit that does not build on the current version
    deleted = "deleted"  # its origin deleted it (a Tombstone is served)
    unfetched = "unfetched"  # known, but its .torrent could not be read yet
    pending = "pending"  # waiting for a moderator (a peer under review)


class FedObject(Base):
    """A Dataset version or Upload, ours or a peer's, with the catalogue row it maps to.

    Several objects may share one upload (the same infohash from several instances):
    they are that upload's sources.
    """

    __tablename__ = "federation_objects"
    __table_args__ = (
        # With the kind: a dataset's own objects are found without reading its uploads'.
        Index("ix_federation_objects_dataset_ref_kind", "dataset_ref", "kind"),
        Index("ix_federation_objects_upload_id", "upload_id"),
        Index("ix_federation_objects_dataset_id_kind", "dataset_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(String(2048), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # dataset / upload
    origin: Mapped[str] = mapped_column(String(2048), index=True)  # the owner actor
    local: Mapped[bool] = mapped_column(default=False)
    # Who handed it to us (the origin itself, or a peer that announced it).
    received_from: Mapped[str] = mapped_column(String(2048), default="")
    # For datasets: the dataset across versions (`prov:specializationOf`).
    dataset_ref: Mapped[str] = mapped_column(String(2048), default="")
    content_hash: Mapped[str] = mapped_column(String(80), default="")
    parent_hash: Mapped[str] = mapped_column(String(80), default="")
    infohash: Mapped[str] = mapped_column(String(64), default="", index=True)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), default=None
    )
    upload_id: Mapped[int | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="SET NULL"), default=None
    )
    state: Mapped[str] = mapped_column(String(16), default=ObjectState.current.value)
    json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class SeenActivity(Base):
    """Activities already applied, so a redelivery or a re-read outbox changes nothing."""

    __tablename__ = "federation_seen"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(2048), unique=True)
    actor: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
