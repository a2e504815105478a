"""Reports from readers and the audit log of moderation actions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from holdfast.accounts.models import Account
from holdfast.db.base import Base, utcnow


class ReportKind(StrEnum):
    incorrect = "incorrect"  # wrong metadata, wrong files
    duplicate = "duplicate"
    broken = "broken"  # no seeders, bad data, dead webseed
    spam = "spam"
    illegal = "illegal"
    other = "other"


class ReportStatus(StrEnum):
    open = "open"
    resolved = "resolved"  # acted on
    dismissed = "dismissed"  # no action needed


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target_type: Mapped[str] = mapped_column(String(16))  # dataset / upload / account
    target_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.open.value, index=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account | None] = relationship(foreign_keys=[account_id], lazy="joined")
    resolved_by: Mapped[Account | None] = relationship(foreign_keys=[resolved_by_id], lazy="joined")


class AuditEntry(Base):
    """One moderation or administration action. Never edited, never deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int]
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    actor: Mapped[Account | None] = relationship(lazy="joined")
