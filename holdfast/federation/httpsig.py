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
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from holdfast.federation.errors import Rejection
from holdfast.federation.httpmessage import (
    BODY_METHODS,
    DIGESTS,
    MAX_BODY_BYTES,
    MAX_COVERED,
    MAX_KEY_ID_CHARS,
    MAX_SIGNATURE_BYTES,
    MAX_SIGNATURE_HEADER_CHARS,
    HttpRequest,
    SignatureCandidate,
    SignatureScheme,
    VerificationPolicy,
    check_time,
    covered_value,
    host_of,
    http_date,
    parse_http_date,
    rejected,
    request_target,
    unix_time,
)
from holdfast.federation.keys import PublicKey, ResolvedKey
from holdfast.federation.rfc9421 import (
    content_digest,
    parse_rfc9421,
    rfc9421_signature_base,
    sign_request_rfc9421,
)

__all__ = [
    "MAX_BODY_BYTES",
    "HttpRequest",
    "KeyResolver",
    "SignatureCandidate",
    "VerificationPolicy",
    "VerifiedSignature",
    "body_digest",
    "check_signer_is_actor",
    "content_digest",
    "http_date",
    "parse_signature",
    "rfc9421_signature_base",
    "sign_request",
    "sign_request_rfc9421",
    "verify_request",
]

CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})


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


# ---------------------------------------------------------------------------
# Signing (draft-cavage, what Mastodon verifies)


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
    sign_query: bool = True,
) -> dict[str, str]:
    """Headers that sign a request the way Mastodon signs its own.

    Returns `Host`, `Date`, (with a body) `Digest`, and `Signature`; send them
    unchanged. A request with a body (a POST to an inbox) covers
    `(request-target) host date digest`; one without (a GET) covers
    `(request-target) host date`. The request target includes the query string,
    as the draft says; `sign_query=False` leaves it out, which is how Mastodon
    and bovine sign and check fetches.
    """
    verb = method.upper()
    headers = {"Host": host_of(url), "Date": http_date(now)}
    covered = ["(request-target)", "host", "date"]
    if body is not None or verb in BODY_METHODS:
        headers["Digest"] = body_digest(body or b"")
        covered.append("digest")
    lines = [f"(request-target): {verb.lower()} {request_target(url, with_query=sign_query)}"]
    lines += [f"{name}: {headers[name.title()]}" for name in covered[1:]]
    signed = "\n".join(lines).encode("latin-1")
    signature = private_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode("ascii")}"'
    )
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
        raise rejected(Rejection.UNKNOWN_KEY, f"no key published as {candidate.key_id}")
    if not _verifies(key.public_key, candidate, policy):
        if refreshed:
            raise rejected(Rejection.BAD_SIGNATURE, f"signature does not match {key.key_id}")
        # The actor may have rotated its key since we cached it.
        key = await _resolve(resolve_key, candidate.key_id, refresh=True)
        if key is None:
            raise rejected(Rejection.UNKNOWN_KEY, f"{candidate.key_id} is no longer published")
        if not _verifies(key.public_key, candidate, policy):
            raise rejected(Rejection.BAD_SIGNATURE, f"signature does not match {key.key_id}")
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
        raise rejected(Rejection.SIGNER_NOT_ACTOR, "activity names no actor")
    if actor != verified.owner:
        raise rejected(
            Rejection.SIGNER_NOT_ACTOR, f"signed by {verified.owner}, but the actor is {actor}"
        )


def parse_signature(
    request: HttpRequest,
    *,
    policy: VerificationPolicy | None = None,
    now: datetime | None = None,
) -> SignatureCandidate:
    """Every check that needs no key: presence, syntax, coverage, time and digest."""
    policy = policy or VerificationPolicy()
    now = now or datetime.now(UTC)
    if len(request.body) > policy.max_body_bytes:
        raise rejected(
            Rejection.TOO_LARGE,
            f"body of {len(request.body)} bytes exceeds {policy.max_body_bytes}",
        )
    if request.header_values("signature-input"):
        return parse_rfc9421(request, policy, now)
    if request.header_values("signature"):
        return _parse_cavage(request, policy, now)
    raise rejected(Rejection.UNSIGNED, "no Signature header")


def _single_header(request: HttpRequest, name: str) -> str:
    values = request.header_values(name)
    if len(values) > 1:
        raise rejected(Rejection.MALFORMED, f"more than one {name} header")
    value = values[0]
    if len(value) > MAX_SIGNATURE_HEADER_CHARS:
        raise rejected(Rejection.TOO_LARGE, f"{name} header too long")
    return value


def _normalised_authority(value: str, scheme: str) -> str:
    value = value.strip().lower()
    default = ":443" if scheme == "https" else ":80"
    return value[: -len(default)] if value.endswith(default) else value


def _check_host(request: HttpRequest, signed_host: str) -> None:
    """The signed Host must name this server, or a request to a peer could be replayed here."""
    scheme = urlsplit(request.url).scheme.lower()
    try:
        ours = host_of(request.url)
    except ValueError as exc:
        raise rejected(Rejection.MALFORMED, f"request URL {request.url!r}") from exc
    if _normalised_authority(signed_host, scheme) != _normalised_authority(ours, scheme):
        raise rejected(Rejection.MALFORMED, f"signed Host {signed_host!r} is not {ours!r}")


def _check_digest(request: HttpRequest, header_value: str) -> None:
    offered: dict[str, str] = {}
    for part in header_value.split(",")[:8]:
        algorithm, equals, value = part.strip().partition("=")
        if not equals:
            raise rejected(Rejection.MALFORMED, f"unreadable Digest {header_value!r}")
        offered[algorithm.lower()] = value.strip()
    checked = 0
    for algorithm, value in offered.items():
        hash_function = DIGESTS.get(algorithm)
        if hash_function is None:
            continue
        try:
            claimed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise rejected(Rejection.MALFORMED, f"Digest {algorithm} is not base64") from exc
        if not hmac.compare_digest(claimed, hash_function(request.body).digest()):
            raise rejected(Rejection.DIGEST_MISMATCH, f"body does not match its {algorithm} digest")
        checked += 1
    if not checked:
        raise rejected(Rejection.DIGEST_MISMATCH, "Digest offers neither SHA-256 nor SHA-512")


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
            raise rejected(Rejection.MALFORMED, "unreadable Signature header")
        key, raw = found.group(1), found.group(2)
        if key in params:
            raise rejected(Rejection.MALFORMED, f"Signature repeats {key!r}")
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
        if len(params) > 16:
            raise rejected(Rejection.MALFORMED, "too many Signature parameters")
        pos = found.end()
        if not found.group(3):
            break
    if not params:
        raise rejected(Rejection.MALFORMED, "empty Signature header")
    return params


def _parse_cavage(
    request: HttpRequest, policy: VerificationPolicy, now: datetime
) -> SignatureCandidate:
    params = _parse_cavage_params(_single_header(request, "signature"))
    key_id = params.get("keyId", "")
    if not key_id or len(key_id) > MAX_KEY_ID_CHARS:
        raise rejected(Rejection.MALFORMED, "keyId missing or too long")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in CAVAGE_ALGORITHMS:
        raise rejected(Rejection.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    try:
        signature = base64.b64decode(params.get("signature", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise rejected(Rejection.MALFORMED, "signature is not base64") from exc
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise rejected(Rejection.MALFORMED, "signature missing or too long")
    default_headers = "(created)" if algorithm == "hs2019" else "date"
    covered = params.get("headers", default_headers).lower().split()
    if not covered or len(covered) > MAX_COVERED or len(set(covered)) != len(covered):
        raise rejected(Rejection.MALFORMED, "headers must list distinct names")

    has_body = request.method in BODY_METHODS or bool(request.body)
    missing = [name for name in ("(request-target)", "host") if name not in covered]
    if "date" not in covered and "(created)" not in covered:
        missing.append("date")
    if has_body and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise rejected(
            Rejection.INSUFFICIENT_COVERAGE, f"signature does not cover {', '.join(missing)}"
        )

    created = expires = None
    for pseudo in ("created", "expires"):
        if f"({pseudo})" in covered and algorithm != "hs2019":
            raise rejected(Rejection.MALFORMED, f"({pseudo}) is only defined for hs2019")
        if f"({pseudo})" in covered and pseudo not in params:
            raise rejected(Rejection.MALFORMED, f"({pseudo}) covered but not given")
    if "created" in params:
        created = unix_time(params["created"], "created")
    if "(expires)" in covered:
        expires = unix_time(params["expires"], "expires")
    if "(created)" not in covered:
        created = parse_http_date(covered_value(request, "date"))
    check_time(created, expires, policy, now)
    _check_host(request, covered_value(request, "host"))
    if "digest" in covered:
        _check_digest(request, covered_value(request, "digest"))

    def base(target: str) -> bytes:
        lines: list[str] = []
        for name in covered:
            if name == "(request-target)":
                lines.append(f"(request-target): {request.method.lower()} {target}")
            elif name in ("(created)", "(expires)"):
                lines.append(f"{name}: {params[name[1:-1]]}")
            else:
                lines.append(f"{name}: {covered_value(request, name)}")
        try:
            return "\n".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise rejected(Rejection.MALFORMED, "non-Latin-1 text in a covered header") from exc

    bases = [base(request_target(request.url))]
    if urlsplit(request.url).query and request.method in ("GET", "HEAD"):
        # Mastodon signs fetches without the query string; accept that form too.
        bases.append(base(request_target(request.url, with_query=False)))
    return SignatureCandidate(
        scheme="draft-cavage",
        key_id=key_id,
        algorithm=algorithm,
        signature=signature,
        bases=tuple(bases),
        covered=tuple(covered),
        created=created,
    )


# ---------------------------------------------------------------------------
# The cryptography


def _verifies(key: PublicKey, candidate: SignatureCandidate, policy: VerificationPolicy) -> bool:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < policy.min_rsa_bits:
        raise rejected(
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
