"""Web seeds submitted by people for an upload, and what checking them found."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from holdfast.db.base import Base, utcnow


class WebseedState(StrEnum):
    """`pending` until checked; `ok` when sampled pieces matched; `failed` otherwise."""

    pending = "pending"
    ok = "ok"
    failed = "failed"


class SubmittedWebseed(Base):
    """A BEP 19 web seed URL someone offered for an upload."""

    __tablename__ = "submitted_webseeds"
    __table_args__ = (UniqueConstraint("upload_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default=WebseedState.pending.value)
    pieces_checked: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
