"""Accounts: registration, passwords, login sessions, API tokens, the first admin."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select

from holdfast.accounts.models import Account, ApiToken, InstanceValue, LoginSession, Role
from holdfast.accounts.ratelimit import RateLimiter
from holdfast.db import Database
from holdfast.db.base import utcnow
from holdfast.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied

NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_-]{2,31}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
TOKEN_PREFIX = "hf_"  # noqa: S105 - a public prefix, not a secret
SETUP_KEY = "setup_token_hash"

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such account" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("holdfast-timing-equaliser")


def hash_secret(value: str) -> str:
    """Hash of a high-entropy token (session cookie, API token) for storage and lookup."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def validate_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_RE.match(name):
        raise InvalidInput(
            "names are 3-32 characters: lowercase letters, digits, '_' and '-'",
            fields={"name": "3-32 characters: a-z, 0-9, _ and -"},
        )
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"the password must have at least {MIN_PASSWORD} characters",
            fields={"password": f"at least {MIN_PASSWORD} characters"},
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("the password is too long", fields={"password": "too long"})
    return password


@dataclass
class Accounts:
    """The account service of one instance."""

    db: Database
    limiter: RateLimiter
    session_days: int = 30

    # --- registration

    def register(
        self,
        name: str,
        password: str,
        *,
        display_name: str = "",
        role: Role = Role.member,
        trusted: bool = False,
    ) -> Account:
        name = validate_name(name)
        validate_password(password)
        password_hash = hash_password(password)
        with self.db.write() as s:
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise Conflict(f"the name '{name}' is taken", fields={"name": "taken"})
            account = Account(
                name=name,
                display_name=display_name.strip()[:100] or name,
                password_hash=password_hash,
                role=role.value,
                trusted=trusted,
            )
            s.add(account)
            s.flush()
            return account

    def has_admin(self) -> bool:
        with self.db.read() as s:
            return (
                s.scalar(select(Account.id).where(Account.role == Role.admin.value).limit(1))
                is not None
            )

    def create_setup_token(self) -> str:
        """A one-time token for creating the first admin (printed by `holdfast serve`)."""
        token = secrets.token_urlsafe(24)
        with self.db.write() as s:
            s.merge(InstanceValue(key=SETUP_KEY, value=hash_secret(token)))
        return token

    def register_first_admin(self, token: str, name: str, password: str) -> Account:
        """Create the first admin with the one-time setup token; the token is then spent."""
        name = validate_name(name)
        validate_password(password)
        password_hash = hash_password(password)
        with self.db.write() as s:
            stored = s.get(InstanceValue, SETUP_KEY)
            if stored is None or not hmac.compare_digest(stored.value, hash_secret(token)):
                raise PermissionDenied("this setup link is invalid or was already used")
            if s.scalar(select(Account.id).where(Account.name == name)) is not None:
                raise Conflict(f"the name '{name}' is taken", fields={"name": "taken"})
            account = Account(
                name=name,
                display_name=name,
                password_hash=password_hash,
                role=Role.admin.value,
                trusted=True,
            )
            s.add(account)
            s.delete(stored)
            s.flush()
            return account

    # --- logging in

    def authenticate(self, name: str, password: str, *, address: str) -> Account:
        """The account for these credentials, or NotAuthenticated. Rate limited."""
        key_name = f"login:name:{name.strip().lower()[:64]}"
        key_addr = f"login:addr:{address}"
        self.limiter.check(key_addr)
        self.limiter.check(key_name)
        with self.db.read() as s:
            account = s.scalar(select(Account).where(Account.name == name.strip().lower()))
        if account is None:
            check_password(_DUMMY_HASH, password)
            ok = False
        else:
            ok = check_password(account.password_hash, password) and account.disabled_at is None
        if not ok or account is None:
            self.limiter.hit(key_addr)
            self.limiter.hit(key_name)
            raise NotAuthenticated("wrong name or password")
        if _hasher.check_needs_rehash(account.password_hash):
            with self.db.write() as s:
                fresh = s.get(Account, account.id)
                if fresh is not None:
                    fresh.password_hash = hash_password(password)
        return account

    def start_session(self, account: Account, *, user_agent: str = "") -> tuple[str, str]:
        """A new login session: returns (cookie value, CSRF token)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.db.write() as s:
            s.add(
                LoginSession(
                    token_hash=hash_secret(token),
                    account_id=account.id,
                    csrf_token=csrf,
                    expires_at=utcnow() + timedelta(days=self.session_days),
                    user_agent=user_agent[:300],
                )
            )
        return token, csrf

    def session_for(self, token: str) -> LoginSession | None:
        if not token or len(token) > 200:
            return None
        with self.db.read() as s:
            row = s.scalar(
                select(LoginSession).where(LoginSession.token_hash == hash_secret(token))
            )
            if row is None or row.expires_at <= utcnow() or row.account.disabled_at is not None:
                return None
            return row

    def end_session(self, token: str) -> None:
        with self.db.write() as s:
            s.execute(delete(LoginSession).where(LoginSession.token_hash == hash_secret(token)))

    def end_all_sessions(self, account_id: int) -> int:
        with self.db.write() as s:
            result = s.execute(delete(LoginSession).where(LoginSession.account_id == account_id))
            return int(getattr(result, "rowcount", 0) or 0)

    # --- API tokens

    def create_token(self, account: Account, name: str = "") -> tuple[ApiToken, str]:
        """A new API token. The plain token is returned once and never stored."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as s:
            row = ApiToken(
                token_hash=hash_secret(plain),
                prefix=plain[:10],
                name=name.strip()[:100],
                account_id=account.id,
            )
            s.add(row)
            s.flush()
            return row, plain

    def account_for_token(self, plain: str) -> Account | None:
        if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
            return None
        with self.db.read() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(plain)))
            if row is None or row.revoked_at is not None or row.account.disabled_at is not None:
                return None
            return row.account

    def list_tokens(self, account: Account) -> list[ApiToken]:
        with self.db.read() as s:
            return list(
                s.scalars(
                    select(ApiToken)
                    .where(ApiToken.account_id == account.id, ApiToken.revoked_at.is_(None))
                    .order_by(ApiToken.id)
                )
            )

    def revoke_token(self, account: Account, token_id: int) -> None:
        with self.db.write() as s:
            row = s.get(ApiToken, token_id)
            if row is None or row.revoked_at is not None:
                raise NotFound("no such token")
            if row.account_id != account.id and not account.has_role(Role.admin):
                raise NotFound("no such token")
            row.revoked_at = utcnow()

    # --- administration

    def get(self, name: str) -> Account:
        with self.db.read() as s:
            account = s.scalar(select(Account).where(Account.name == name.strip().lower()))
        if account is None:
            raise NotFound(f"no account named '{name}'")
        return account

    def list(self, *, offset: int = 0, limit: int = 50) -> tuple[list[Account], int]:
        with self.db.read() as s:
            total = s.scalar(select(func.count(Account.id))) or 0
            rows = list(s.scalars(select(Account).order_by(Account.id).offset(offset).limit(limit)))
        return rows, total

    def set_role(
        self,
        actor: Account,
        name: str,
        *,
        role: Role | None = None,
        trusted: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        if not actor.has_role(Role.admin):
            raise PermissionDenied("only admins change roles")
        from holdfast.moderation.service import record

        with self.db.write() as s:
            account = s.scalar(select(Account).where(Account.name == name.strip().lower()))
            if account is None:
                raise NotFound(f"no account named '{name}'")
            if account.id == actor.id and (role not in (None, Role.admin) or disabled):
                raise InvalidInput("admins cannot demote or disable themselves")
            before = {"role": account.role, "trusted": account.trusted}
            if role is not None:
                account.role = role.value
            if trusted is not None:
                account.trusted = trusted
            if disabled is not None:
                account.disabled_at = utcnow() if disabled else None
                if disabled:
                    s.execute(delete(LoginSession).where(LoginSession.account_id == account.id))
            record(
                s,
                actor,
                "account.update",
                "account",
                account.id,
                detail={
                    "before": before,
                    "role": account.role,
                    "trusted": account.trusted,
                    "disabled": account.disabled_at is not None,
                },
            )
            s.flush()
            return account
