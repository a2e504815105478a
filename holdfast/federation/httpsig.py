"""HTTP signatures: signing what we send, verifying what we receive.

Outgoing requests are signed with draft-cavage-http-signatures-12 `rsa-sha256`,
exactly as Mastodon signs and verifies: headers `(request-target) host date` on a
GET and `(request-target) host date digest` on a POST, with
`Digest: SHA-256=<base64>`.

Incoming requests are verified when signed with draft-cavage (`rsa-sha256` or
`hs2019`) or with RFC 9421 HTTP Message Signatures (`Signature-Input` +
`Signature`). Every refusal is a `SignatureRejected` whose `reason` says why:
unsigned, malformed, too large, unsupported algorithm, required parts not
covered, digest mismatch, stale / future / expired, unknown key, weak key, bad
signature, or (via `check_signer_is_actor`) a signer who is not the actor.

Keys are found by a caller-supplied `KeyResolver`, so the app decides how keys
are cached and fetched. When a signature does not verify, the resolver is asked
once more with `refresh=True` — the hook for re-fetching the actor after a key
rotation — before the request is refused.

Nothing here imports a web framework: a request is a plain `HttpRequest`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeAlias
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from holdfast.federation.errors import Rejection, SignatureRejected
from holdfast.federation.keys import PublicKey, ResolvedKey
from holdfast.federation.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_inner_list,
    serialize_item,
)

MAX_BODY_BYTES = 1024 * 1024
MAX_SIGNATURE_HEADER_CHARS = 8192
MAX_KEY_ID_CHARS = 2048
MAX_COVERED = 32
MAX_SIGNATURE_BYTES = 1024
MAX_HEADER_VALUE_CHARS = 8192

CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
RFC9421_ALGORITHMS = frozenset(
    {"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519", "ecdsa-p256-sha256"}
)
_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

SignatureScheme: TypeAlias = Literal["draft-cavage", "rfc9421"]


def _rejected(reason: Rejection, detail: str) -> SignatureRejected:
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
class VerifiedSignature:
    """A signature that verified: who signed, with which key, covering what."""

    scheme: SignatureScheme
    key_id: str
    owner: str
    covered: tuple[str, ...]
    created: datetime | None
    label: str | None = None


class KeyResolver(Protocol):
    """Finds the public key published under `key_id`.

    Called with `refresh=False` first (a cache may answer); called at most once
    more with `refresh=True` when the key is unknown or the signature does not
    verify, so the app can re-fetch the actor in case its key was rotated.
    Returns None when there is no such key.
    """

    async def __call__(self, key_id: str, *, refresh: bool) -> ResolvedKey | None: ...


@dataclass(frozen=True, slots=True)
class _Candidate:
    scheme: SignatureScheme
    key_id: str
    algorithm: str | None
    signature: bytes
    bases: tuple[bytes, ...]
    covered: tuple[str, ...]
    created: datetime | None
    label: str | None = None


# ---------------------------------------------------------------------------
# Signing (draft-cavage, what Mastodon verifies)


def http_date(moment: datetime | None = None) -> str:
    """IMF-fixdate, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'."""
    moment = moment or datetime.now(UTC)
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def _host_of(url: str) -> str:
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


def _request_target(url: str, *, with_query: bool = True) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if with_query and parts.query else path


def body_digest(body: bytes) -> str:
    """The `Digest` header value Mastodon expects."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign_request(
    method: str,
    url: str,
    *,
    private_key: rsa.RSAPrivateKey,
    key_id: str,
    body: bytes | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers that sign a request the way Mastodon signs its own.

    Returns `Host`, `Date`, (with a body) `Digest`, and `Signature`; send them
    unchanged. A request with a body (a POST to an inbox) covers
    `(request-target) host date digest`; one without (a GET) covers
    `(request-target) host date`.
    """
    verb = method.upper()
    headers = {"Host": _host_of(url), "Date": http_date(now)}
    covered = ["(request-target)", "host", "date"]
    if body is not None or verb in _BODY_METHODS:
        headers["Digest"] = body_digest(body or b"")
        covered.append("digest")
    lines = [f"(request-target): {verb.lower()} {_request_target(url)}"]
    lines += [f"{name}: {headers[name.title()]}" for name in covered[1:]]
    signed = "\n".join(lines).encode("latin-1")
    signature = private_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
    return headers


def content_digest(body: bytes) -> str:
    """An RFC 9530 `Content-Digest` header value (SHA-256)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def sign_request_rfc9421(
    method: str,
    url: str,
    *,
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    key_id: str,
    body: bytes | None = None,
    now: datetime | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """Headers that sign a request with RFC 9421 (`rsa-v1_5-sha256` or `ed25519`).

    Covers `@method`, `@target-uri` and, with a body, `content-digest`.
    """
    verb = method.upper()
    headers: dict[str, str] = {}
    components = ["@method", "@target-uri"]
    if body is not None or verb in _BODY_METHODS:
        headers["Content-Digest"] = content_digest(body or b"")
        components.append("content-digest")
    created = int((now or datetime.now(UTC)).timestamp())
    alg = "ed25519" if isinstance(private_key, ed25519.Ed25519PrivateKey) else "rsa-v1_5-sha256"
    inner = InnerList(
        [Item(name) for name in components],
        {"created": created, "keyid": key_id, "alg": alg},
    )
    request = HttpRequest.build(verb, url, headers, body or b"")
    base = _rfc9421_base(request, inner).encode("latin-1")
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        signature = private_key.sign(base)
    else:
        signature = private_key.sign(base, padding.PKCS1v15(), hashes.SHA256())
    headers["Signature-Input"] = f"{label}={serialize_inner_list(inner)}"
    headers["Signature"] = f"{label}=:{base64.b64encode(signature).decode('ascii')}:"
    return headers


# ---------------------------------------------------------------------------
# Verification


async def verify_request(
    request: HttpRequest,
    resolve_key: KeyResolver,
    *,
    policy: VerificationPolicy | None = None,
    now: datetime | None = None,
) -> VerifiedSignature:
    """Verify an incoming request's signature or raise `SignatureRejected`."""
    policy = policy or VerificationPolicy()
    now = now or datetime.now(UTC)
    candidate = parse_signature(request, policy=policy, now=now)

    refreshed = False
    key = await _resolve(resolve_key, candidate.key_id, refresh=False)
    if key is None:
        key = await _resolve(resolve_key, candidate.key_id, refresh=True)
        refreshed = True
    if key is None:
        raise _rejected(Rejection.UNKNOWN_KEY, f"no key published as {candidate.key_id}")
    if not _verifies(key.public_key, candidate, policy):
        if refreshed:
            raise _rejected(Rejection.BAD_SIGNATURE, f"signature does not match {key.key_id}")
        # The actor may have rotated its key since we cached it.
        key = await _resolve(resolve_key, candidate.key_id, refresh=True)
        if key is None:
            raise _rejected(Rejection.UNKNOWN_KEY, f"{candidate.key_id} is no longer published")
        if not _verifies(key.public_key, candidate, policy):
            raise _rejected(Rejection.BAD_SIGNATURE, f"signature does not match {key.key_id}")
    return VerifiedSignature(
        scheme=candidate.scheme,
        key_id=key.key_id,
        owner=key.owner,
        covered=candidate.covered,
        created=candidate.created,
        label=candidate.label,
    )


async def _resolve(resolve_key: KeyResolver, key_id: str, *, refresh: bool) -> ResolvedKey | None:
    key = await resolve_key(key_id, refresh=refresh)
    # A resolver that answers with some other key must not vouch for this one.
    if key is None or key.key_id != key_id:
        return None
    return key


def check_signer_is_actor(verified: VerifiedSignature, activity: Mapping[str, Any]) -> None:
    """Refuse an activity whose `actor` is not the owner of the key that signed it."""
    actor = activity.get("actor")
    if isinstance(actor, Mapping):
        actor = actor.get("id")
    if not isinstance(actor, str):
        raise _rejected(Rejection.SIGNER_NOT_ACTOR, "activity names no actor")
    if actor != verified.owner:
        raise _rejected(
            Rejection.SIGNER_NOT_ACTOR, f"signed by {verified.owner}, but the actor is {actor}"
        )


def parse_signature(
    request: HttpRequest,
    *,
    policy: VerificationPolicy | None = None,
    now: datetime | None = None,
) -> _Candidate:
    """Every check that needs no key: presence, syntax, coverage, time and digest."""
    policy = policy or VerificationPolicy()
    now = now or datetime.now(UTC)
    if len(request.body) > policy.max_body_bytes:
        raise _rejected(
            Rejection.TOO_LARGE,
            f"body of {len(request.body)} bytes exceeds {policy.max_body_bytes}",
        )
    if request.header_values("signature-input"):
        return _parse_rfc9421(request, policy, now)
    if request.header_values("signature"):
        return _parse_cavage(request, policy, now)
    raise _rejected(Rejection.UNSIGNED, "no Signature header")


def _check_time(
    created: datetime | None, expires: datetime | None, policy: VerificationPolicy, now: datetime
) -> None:
    if created is None:
        raise _rejected(Rejection.INSUFFICIENT_COVERAGE, "no signed creation time")
    if created > now + policy.max_future:
        raise _rejected(Rejection.FUTURE, f"signed at {created.isoformat()}, in the future")
    if now - created > policy.max_age:
        raise _rejected(Rejection.STALE, f"signed at {created.isoformat()}, too long ago")
    if expires is not None and now > expires + policy.max_future:
        raise _rejected(Rejection.EXPIRED, f"signature expired at {expires.isoformat()}")


def _parse_http_date(value: str) -> datetime:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise _rejected(Rejection.MALFORMED, f"unreadable Date header {value!r}") from exc
    if moment is None or moment.tzinfo is None:
        raise _rejected(Rejection.MALFORMED, f"Date header without a zone: {value!r}")
    return moment


def _timestamp(value: object, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _rejected(Rejection.MALFORMED, f"{name} is not a Unix time")
    text = str(value)
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise _rejected(Rejection.MALFORMED, f"{name} is not a Unix time: {text!r}")
    return datetime.fromtimestamp(int(text), UTC)


def _single_header(request: HttpRequest, name: str) -> str:
    values = request.header_values(name)
    if len(values) > 1:
        raise _rejected(Rejection.MALFORMED, f"more than one {name} header")
    value = values[0]
    if len(value) > MAX_SIGNATURE_HEADER_CHARS:
        raise _rejected(Rejection.TOO_LARGE, f"{name} header too long")
    return value


def _covered_value(request: HttpRequest, name: str) -> str:
    value = request.header(name)
    if value is None:
        raise _rejected(Rejection.MALFORMED, f"covered header {name!r} is absent")
    if len(value) > MAX_HEADER_VALUE_CHARS:
        raise _rejected(Rejection.TOO_LARGE, f"covered header {name!r} too long")
    return value


def _normalised_authority(value: str, scheme: str) -> str:
    value = value.strip().lower()
    default = ":443" if scheme == "https" else ":80"
    return value[: -len(default)] if value.endswith(default) else value


def _check_host(request: HttpRequest, signed_host: str) -> None:
    """The signed Host must name this server, or a request to a peer could be replayed here."""
    scheme = urlsplit(request.url).scheme.lower()
    try:
        ours = _host_of(request.url)
    except ValueError as exc:
        raise _rejected(Rejection.MALFORMED, f"request URL {request.url!r}") from exc
    if _normalised_authority(signed_host, scheme) != _normalised_authority(ours, scheme):
        raise _rejected(Rejection.MALFORMED, f"signed Host {signed_host!r} is not {ours!r}")


def _check_digest(request: HttpRequest, header_value: str) -> None:
    offered: dict[str, str] = {}
    for part in header_value.split(",")[:8]:
        algorithm, equals, value = part.strip().partition("=")
        if not equals:
            raise _rejected(Rejection.MALFORMED, f"unreadable Digest {header_value!r}")
        offered[algorithm.lower()] = value.strip()
    checked = 0
    for algorithm, value in offered.items():
        hash_function = _DIGESTS.get(algorithm)
        if hash_function is None:
            continue
        try:
            claimed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _rejected(Rejection.MALFORMED, f"Digest {algorithm} is not base64") from exc
        if not hmac.compare_digest(claimed, hash_function(request.body).digest()):
            raise _rejected(
                Rejection.DIGEST_MISMATCH, f"body does not match its {algorithm} digest"
            )
        checked += 1
    if not checked:
        raise _rejected(Rejection.DIGEST_MISMATCH, "Digest offers neither SHA-256 nor SHA-512")


_CAVAGE_PARAM = re.compile(
    r"""\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[A-Za-z0-9!#$%&'*+.^_`|~/=-]+)\s*(,|$)"""
)


def _parse_cavage_params(value: str) -> dict[str, str]:
    # Old node-http-signature sent a stray "Signature " prefix; Mastodon tolerates it.
    text = value[len("Signature ") :] if value.startswith("Signature ") else value
    params: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        found = _CAVAGE_PARAM.match(text, pos)
        if found is None or found.end() == pos:
            raise _rejected(Rejection.MALFORMED, "unreadable Signature header")
        key, raw = found.group(1), found.group(2)
        if key in params:
            raise _rejected(Rejection.MALFORMED, f"Signature repeats {key!r}")
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
        if len(params) > 16:
            raise _rejected(Rejection.MALFORMED, "too many Signature parameters")
        pos = found.end()
        if not found.group(3):
            break
    if not params:
        raise _rejected(Rejection.MALFORMED, "empty Signature header")
    return params


def _parse_cavage(request: HttpRequest, policy: VerificationPolicy, now: datetime) -> _Candidate:
    params = _parse_cavage_params(_single_header(request, "signature"))
    key_id = params.get("keyId", "")
    if not key_id or len(key_id) > MAX_KEY_ID_CHARS:
        raise _rejected(Rejection.MALFORMED, "keyId missing or too long")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in CAVAGE_ALGORITHMS:
        raise _rejected(Rejection.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    try:
        signature = base64.b64decode(params.get("signature", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _rejected(Rejection.MALFORMED, "signature is not base64") from exc
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise _rejected(Rejection.MALFORMED, "signature missing or too long")
    default_headers = "(created)" if algorithm == "hs2019" else "date"
    covered = params.get("headers", default_headers).lower().split()
    if not covered or len(covered) > MAX_COVERED or len(set(covered)) != len(covered):
        raise _rejected(Rejection.MALFORMED, "headers must list distinct names")

    has_body = request.method in _BODY_METHODS or bool(request.body)
    missing = [name for name in ("(request-target)", "host") if name not in covered]
    if "date" not in covered and "(created)" not in covered:
        missing.append("date")
    if has_body and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise _rejected(
            Rejection.INSUFFICIENT_COVERAGE, f"signature does not cover {', '.join(missing)}"
        )

    created = expires = None
    for pseudo in ("created", "expires"):
        if f"({pseudo})" in covered and algorithm != "hs2019":
            raise _rejected(Rejection.MALFORMED, f"({pseudo}) is only defined for hs2019")
        if f"({pseudo})" in covered and pseudo not in params:
            raise _rejected(Rejection.MALFORMED, f"({pseudo}) covered but not given")
    if "created" in params:
        created = _timestamp(params["created"], "created")
    if "(expires)" in covered:
        expires = _timestamp(params["expires"], "expires")
    if "(created)" not in covered:
        created = _parse_http_date(_covered_value(request, "date"))
    _check_time(created, expires, policy, now)
    _check_host(request, _covered_value(request, "host"))
    if "digest" in covered:
        _check_digest(request, _covered_value(request, "digest"))

    def base(target: str) -> bytes:
        lines: list[str] = []
        for name in covered:
            if name == "(request-target)":
                lines.append(f"(request-target): {request.method.lower()} {target}")
            elif name in ("(created)", "(expires)"):
                lines.append(f"{name}: {params[name[1:-1]]}")
            else:
                lines.append(f"{name}: {_covered_value(request, name)}")
        try:
            return "\n".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise _rejected(Rejection.MALFORMED, "non-Latin-1 text in a covered header") from exc

    bases = [base(_request_target(request.url))]
    if urlsplit(request.url).query and request.method in ("GET", "HEAD"):
        # Mastodon signs fetches without the query string; accept that form too.
        bases.append(base(_request_target(request.url, with_query=False)))
    return _Candidate(
        scheme="draft-cavage",
        key_id=key_id,
        algorithm=algorithm,
        signature=signature,
        bases=tuple(bases),
        covered=tuple(covered),
        created=created,
    )


# ---------------------------------------------------------------------------
# RFC 9421


def _derived_value(request: HttpRequest, name: str) -> str:
    parts = urlsplit(request.url)
    if name == "@method":
        return request.method
    if name == "@target-uri":
        return request.url
    if name == "@authority":
        try:
            return _host_of(request.url)
        except ValueError as exc:
            raise _rejected(Rejection.MALFORMED, f"request URL {request.url!r}") from exc
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@request-target":
        return _request_target(request.url)
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return f"?{parts.query}"
    raise _rejected(Rejection.MALFORMED, f"unsupported component {name!r}")


def _rfc9421_base(request: HttpRequest, inner: InnerList) -> str:
    lines: list[str] = []
    for item in inner.items:
        name = item.value
        if not isinstance(name, str) or isinstance(name, Token) or item.params:
            raise _rejected(Rejection.MALFORMED, "component identifiers must be plain strings")
        if name != name.lower() or name == "@signature-params":
            raise _rejected(Rejection.MALFORMED, f"bad component identifier {name!r}")
        value = (
            _derived_value(request, name) if name.startswith("@") else _covered_value(request, name)
        )
        if "\n" in value or "\r" in value:
            raise _rejected(Rejection.MALFORMED, f"line break in component {name!r}")
        lines.append(f"{serialize_item(item)}: {value}")
    lines.append(f'"@signature-params": {serialize_inner_list(inner)}')
    return "\n".join(lines)


def rfc9421_signature_base(request: HttpRequest, label: str) -> bytes:
    """The RFC 9421 signature base of one labelled signature, for checks and diagnostics."""
    try:
        inputs = parse_dictionary(_covered_joined(request, "signature-input") or "")
    except StructuredFieldError as exc:
        raise _rejected(Rejection.MALFORMED, f"unreadable Signature-Input: {exc}") from exc
    member = inputs.get(label)
    if not isinstance(member, InnerList):
        raise _rejected(Rejection.MALFORMED, f"no signature input labelled {label!r}")
    return _rfc9421_base(request, member).encode("latin-1")


def _check_content_digest(request: HttpRequest) -> None:
    value = _covered_value(request, "content-digest")
    try:
        members = parse_dictionary(value)
    except StructuredFieldError as exc:
        raise _rejected(Rejection.MALFORMED, f"unreadable Content-Digest: {exc}") from exc
    checked = 0
    for algorithm, member in members.items():
        hash_function = _DIGESTS.get(algorithm)
        if hash_function is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise _rejected(Rejection.MALFORMED, f"Content-Digest {algorithm} is not bytes")
        if not hmac.compare_digest(member.value, hash_function(request.body).digest()):
            raise _rejected(
                Rejection.DIGEST_MISMATCH, f"body does not match its {algorithm} Content-Digest"
            )
        checked += 1
    if not checked:
        raise _rejected(
            Rejection.DIGEST_MISMATCH, "Content-Digest offers neither sha-256 nor sha-512"
        )


def _rfc9421_missing(names: list[str], has_body: bool, params: Mapping[str, object]) -> list[str]:
    missing: list[str] = []
    if "@method" not in names:
        missing.append("@method")
    if "@target-uri" not in names and not (
        "@authority" in names and ("@path" in names or "@request-target" in names)
    ):
        missing.append("@target-uri")
    if "created" not in params and "date" not in names:
        missing.append("created")
    if has_body and "content-digest" not in names:
        missing.append("content-digest")
    return missing


def _parse_rfc9421(request: HttpRequest, policy: VerificationPolicy, now: datetime) -> _Candidate:
    input_text = _covered_joined(request, "signature-input")
    signature_text = _covered_joined(request, "signature")
    if signature_text is None:
        raise _rejected(Rejection.MALFORMED, "Signature-Input without Signature")
    try:
        inputs = parse_dictionary(input_text or "")
        if len(inputs) > 8:
            raise _rejected(Rejection.TOO_LARGE, "more than 8 signatures")
        signatures = parse_dictionary(signature_text)
    except StructuredFieldError as exc:
        raise _rejected(Rejection.MALFORMED, f"unreadable signature fields: {exc}") from exc

    has_body = request.method in _BODY_METHODS or bool(request.body)
    first_missing: list[str] | None = None
    for label, member in inputs.items():
        if not isinstance(member, InnerList):
            raise _rejected(Rejection.MALFORMED, f"signature {label!r} input is not a list")
        names = [item.value for item in member.items]
        if not all(isinstance(name, str) for name in names):
            raise _rejected(Rejection.MALFORMED, f"signature {label!r} covers a non-string")
        missing = _rfc9421_missing([str(name) for name in names], has_body, member.params)
        if missing:
            first_missing = first_missing if first_missing is not None else missing
            continue
        return _rfc9421_candidate(request, label, member, signatures, policy, now)
    raise _rejected(
        Rejection.INSUFFICIENT_COVERAGE,
        f"no signature covers {', '.join(first_missing or ['anything'])}",
    )


def _covered_joined(request: HttpRequest, name: str) -> str | None:
    values = request.header_values(name)
    if not values:
        return None
    joined = ", ".join(values)
    if len(joined) > MAX_SIGNATURE_HEADER_CHARS:
        raise _rejected(Rejection.TOO_LARGE, f"{name} header too long")
    return joined


def _rfc9421_candidate(
    request: HttpRequest,
    label: str,
    inner: InnerList,
    signatures: Mapping[str, Item | InnerList],
    policy: VerificationPolicy,
    now: datetime,
) -> _Candidate:
    signature_member = signatures.get(label)
    if not isinstance(signature_member, Item) or not isinstance(signature_member.value, bytes):
        raise _rejected(Rejection.MALFORMED, f"no Signature for label {label!r}")
    signature = signature_member.value
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise _rejected(Rejection.MALFORMED, "signature missing or too long")
    params = inner.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id or len(key_id) > MAX_KEY_ID_CHARS:
        raise _rejected(Rejection.MALFORMED, "keyid missing or too long")
    alg = params.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in RFC9421_ALGORITHMS):
        raise _rejected(Rejection.UNSUPPORTED_ALGORITHM, f"alg {alg!r}")
    names = [str(item.value) for item in inner.items]
    if len(names) > MAX_COVERED or len(set(names)) != len(names):
        raise _rejected(Rejection.MALFORMED, "covered components must be distinct")

    created = _timestamp(params["created"], "created") if "created" in params else None
    expires = _timestamp(params["expires"], "expires") if "expires" in params else None
    if created is None:
        created = _parse_http_date(_covered_value(request, "date"))
    _check_time(created, expires, policy, now)
    if "content-digest" in names:
        _check_content_digest(request)
    try:
        base = _rfc9421_base(request, inner).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _rejected(Rejection.MALFORMED, "non-Latin-1 text in a covered component") from exc
    return _Candidate(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        signature=signature,
        bases=(base,),
        covered=tuple(names),
        created=created,
        label=label,
    )


# ---------------------------------------------------------------------------
# The cryptography


def _verifies(key: PublicKey, candidate: _Candidate, policy: VerificationPolicy) -> bool:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < policy.min_rsa_bits:
        raise _rejected(
            Rejection.WEAK_KEY, f"RSA key of {key.key_size} bits (minimum {policy.min_rsa_bits})"
        )
    return any(
        _verify_one(key, candidate.algorithm, candidate.signature, base) for base in candidate.bases
    )


def _verify_one(key: PublicKey, algorithm: str | None, signature: bytes, data: bytes) -> bool:
    attempts: list[str]
    if algorithm in ("rsa-sha256", "rsa-v1_5-sha256"):
        attempts = ["rsa-v1_5-sha256"]
    elif algorithm in ("rsa-pss-sha512", "ed25519", "ecdsa-p256-sha256"):
        attempts = [algorithm]
    elif isinstance(key, rsa.RSAPublicKey):
        # hs2019 or no alg: the fediverse means PKCS#1 v1.5 with SHA-256 by it.
        attempts = ["rsa-v1_5-sha256", "rsa-pss-sha512"]
    elif isinstance(key, ed25519.Ed25519PublicKey):
        attempts = ["ed25519"]
    else:
        attempts = ["ecdsa-p256-sha256"]
    for attempt in attempts:
        try:
            if attempt == "rsa-v1_5-sha256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                return True
            if attempt == "rsa-pss-sha512" and isinstance(key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
                key.verify(signature, data, pss, hashes.SHA512())
                return True
            if attempt == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
                return True
            if attempt == "ecdsa-p256-sha256" and isinstance(key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    continue
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, data, ec.ECDSA(hashes.SHA256()))
                return True
        except InvalidSignature:
            continue
    return False
