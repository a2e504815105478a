"""The request model and checks shared by the draft-cavage and RFC 9421 verifiers.

Internal to `holdfast.federation`; use `holdfast.federation.httpsig`.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

from holdfast.federation.errors import Rejection, SignatureRejected

MAX_BODY_BYTES = 1024 * 1024
MAX_SIGNATURE_HEADER_CHARS = 8192
MAX_KEY_ID_CHARS = 2048
MAX_COVERED = 32
MAX_SIGNATURE_BYTES = 1024
MAX_HEADER_VALUE_CHARS = 8192
DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

SignatureScheme: TypeAlias = Literal["draft-cavage", "rfc9421"]


def rejected(reason: Rejection, detail: str) -> SignatureRejected:
    return SignatureRejected(reason, detail)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the verifier sees it (or as the signer is about to send it).

    `url` is the absolute URL the client addressed (scheme, authority, path and
    query); behind a reverse proxy the app builds it from its public base URL.
    Header names are case-insensitive; repeated headers keep every value.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes = b"",
    ) -> HttpRequest:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        normalised = tuple(
            (
                (name.decode("latin-1") if isinstance(name, bytes) else name).lower(),
                value.decode("latin-1") if isinstance(value, bytes) else value,
            )
            for name, value in pairs
        )
        return cls(method=method.upper(), url=url, headers=normalised, body=body)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    def header(self, name: str) -> str | None:
        """All values of a header joined by ', ' (RFC 9110 field combination), or None."""
        values = self.header_values(name)
        if not values:
            return None
        return ", ".join(value.strip() for value in values)


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """Limits applied to incoming signatures.

    Mastodon accepts a Date up to 12 h old; a delivery is signed when it is
    sent, so an hour is ample and narrows the replay window.
    """

    max_age: timedelta = timedelta(hours=1)
    max_future: timedelta = timedelta(minutes=10)
    max_body_bytes: int = MAX_BODY_BYTES
    min_rsa_bits: int = 2048


@dataclass(frozen=True, slots=True)
class SignatureCandidate:
    """A parsed signature that passed every check needing no key.

    `bases` holds the signed text to try, usually one; a fetch signed the
    Mastodon way (without the query string) adds a second.
    """

    scheme: SignatureScheme
    key_id: str
    algorithm: str | None
    signature: bytes
    bases: tuple[bytes, ...]
    covered: tuple[str, ...]
    created: datetime | None
    label: str | None = None


def http_date(moment: datetime | None = None) -> str:
    """IMF-fixdate, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'."""
    moment = moment or datetime.now(UTC)
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    if parts.port is not None and parts.port != default_port:
        return f"{host}:{parts.port}"
    return host


def request_target(url: str, *, with_query: bool = True) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if with_query and parts.query else path


def check_time(
    created: datetime | None, expires: datetime | None, policy: VerificationPolicy, now: datetime
) -> None:
    if created is None:
        raise rejected(Rejection.INSUFFICIENT_COVERAGE, "no signed creation time")
    if created > now + policy.max_future:
        raise rejected(Rejection.FUTURE, f"signed at {created.isoformat()}, in the future")
    if now - created > policy.max_age:
        raise rejected(Rejection.STALE, f"signed at {created.isoformat()}, too long ago")
    if expires is not None and now > expires + policy.max_future:
        raise rejected(Rejection.EXPIRED, f"signature expired at {expires.isoformat()}")


def parse_http_date(value: str) -> datetime:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise rejected(Rejection.MALFORMED, f"unreadable Date header {value!r}") from exc
    if moment is None or moment.tzinfo is None:
        raise rejected(Rejection.MALFORMED, f"Date header without a zone: {value!r}")
    return moment


def unix_time(value: object, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise rejected(Rejection.MALFORMED, f"{name} is not a Unix time")
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise rejected(Rejection.MALFORMED, f"{name} is not a Unix time: {text!r}")
    return datetime.fromtimestamp(int(text), UTC)


def covered_value(request: HttpRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise rejected(Rejection.MALFORMED, f"covered header {name!r} is absent")
    if len(value) > MAX_HEADER_VALUE_CHARS:
        raise rejected(Rejection.TOO_LARGE, f"covered header {name!r} too long")
    return value


def joined_header(request: HttpRequest, name: str) -> str | None:
    values = request.header_values(name)
    if not values:
        return None
    joined = ", ".join(values)
    if len(joined) > MAX_SIGNATURE_HEADER_CHARS:
        raise rejected(Rejection.TOO_LARGE, f"{name} header too long")
    return joined
