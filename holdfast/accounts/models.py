"""Accounts, login sessions and API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from holdfast.db.base import Base, utcnow


class Role(StrEnum):
    """What an account may do. Each role can do everything the ones below it can."""

    admin = "admin"
    moderator = "moderator"
    uploader = "uploader"
    member = "member"

    @property
    def rank(self) -> int:
        return {"member": 0, "uploader": 1, "moderator": 2, "admin": 3}[self.value]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.member.value)
    # Trusted accounts publish without waiting in the review queue.
    trusted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def has_role(self, role: Role) -> bool:
        return self.disabled_at is None and self.role_enum.at_least(role)

    @property
    def publishes_directly(self) -> bool:
        """Whether what this account submits is approved without review."""
        return self.disabled_at is None and (self.trusted or self.role_enum.at_least(Role.uploader))


class LoginSession(Base):
    """A browser login. Only a hash of the cookie value is stored; revoking is a delete."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(300), default="")

    account: Mapped[Account] = relationship(lazy="joined")


class ApiToken(Base):
    """A bearer token for scripts. Shown once at creation; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(lazy="joined")


class InstanceValue(Base):
    """Small named values of the instance (the one-time setup link, for example)."""

    __tablename__ = "instance_values"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
