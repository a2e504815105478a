"""The holdfast.yaml of an upload, as the instance shows and indexes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from holdfast.db.base import Base, utcnow


class UploadMetadata(Base):
    """The checked holdfast.yaml of one upload (the file inside its torrent).

    `display` is holdfast.arrays.metadata.to_display's JSON (creators, licence,
    keywords, coverage, related identifiers, files and arrays); `search_text` is what
    was added to the upload's search document, so it can be replaced.
    """

    __tablename__ = "upload_metadata"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    display: Mapped[dict[str, Any]]
    search_text: Mapped[str] = mapped_column(Text, default="")
    yaml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
