"""RFC 9421 HTTP Message Signatures: signing, and the checks that need no key.

Internal to `holdfast.federation`; use `holdfast.federation.httpsig`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from holdfast.federation.errors import Rejection
from holdfast.federation.httpmessage import (
    BODY_METHODS,
    DIGESTS,
    MAX_COVERED,
    MAX_KEY_ID_CHARS,
    MAX_SIGNATURE_BYTES,
    HttpRequest,
    SignatureCandidate,
    VerificationPolicy,
    check_time,
    covered_value,
    host_of,
    joined_header,
    parse_http_date,
    rejected,
    request_target,
    unix_time,
)
from holdfast.federation.structured_fields import (
    InnerList,
    Item,
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_inner_list,
    serialize_item,
)

RFC9421_ALGORITHMS = frozenset(
    {"rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519", "ecdsa-p256-sha256"}
)


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
    if body is not None or verb in BODY_METHODS:
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


def _derived_value(request: HttpRequest, name: str) -> str:
    parts = urlsplit(request.url)
    if name == "@method":
        return request.method
    if name == "@target-uri":
        return request.url
    if name == "@authority":
        try:
            return host_of(request.url)
        except ValueError as exc:
            raise rejected(Rejection.MALFORMED, f"request URL {request.url!r}") from exc
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@request-target":
        return request_target(request.url)
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return f"?{parts.query}"
    raise rejected(Rejection.MALFORMED, f"unsupported component {name!r}")


def _rfc9421_base(request: HttpRequest, inner: InnerList) -> str:
    lines: list[str] = []
    for item in inner.items:
        name = item.value
        if not isinstance(name, str) or isinstance(name, Token) or item.params:
            raise rejected(Rejection.MALFORMED, "component identifiers must be plain strings")
        if name != name.lower() or name == "@signature-params":
            raise rejected(Rejection.MALFORMED, f"bad component identifier {name!r}")
        value = (
            _derived_value(request, name) if name.startswith("@") else covered_value(request, name)
        )
        if "\n" in value or "\r" in value:
            raise rejected(Rejection.MALFORMED, f"line break in component {name!r}")
        lines.append(f"{serialize_item(item)}: {value}")
    lines.append(f'"@signature-params": {serialize_inner_list(inner)}')
    return "\n".join(lines)


def rfc9421_signature_base(request: HttpRequest, label: str) -> bytes:
    """The RFC 9421 signature base of one labelled signature, for checks and diagnostics."""
    try:
        inputs = parse_dictionary(joined_header(request, "signature-input") or "")
    except StructuredFieldError as exc:
        raise rejected(Rejection.MALFORMED, f"unreadable Signature-Input: {exc}") from exc
    member = inputs.get(label)
    if not isinstance(member, InnerList):
        raise rejected(Rejection.MALFORMED, f"no signature input labelled {label!r}")
    return _rfc9421_base(request, member).encode("latin-1")


def _check_content_digest(request: HttpRequest) -> None:
    value = covered_value(request, "content-digest")
    try:
        members = parse_dictionary(value)
    except StructuredFieldError as exc:
        raise rejected(Rejection.MALFORMED, f"unreadable Content-Digest: {exc}") from exc
    checked = 0
    for algorithm, member in members.items():
        hash_function = DIGESTS.get(algorithm)
        if hash_function is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise rejected(Rejection.MALFORMED, f"Content-Digest {algorithm} is not bytes")
        if not hmac.compare_digest(member.value, hash_function(request.body).digest()):
            raise rejected(
                Rejection.DIGEST_MISMATCH, f"body does not match its {algorithm} Content-Digest"
            )
        checked += 1
    if not checked:
        raise rejected(
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


def parse_rfc9421(
    request: HttpRequest, policy: VerificationPolicy, now: datetime
) -> SignatureCandidate:
    input_text = joined_header(request, "signature-input")
    signature_text = joined_header(request, "signature")
    if signature_text is None:
        raise rejected(Rejection.MALFORMED, "Signature-Input without Signature")
    try:
        inputs = parse_dictionary(input_text or "")
        if len(inputs) > 8:
            raise rejected(Rejection.TOO_LARGE, "more than 8 signatures")
        signatures = parse_dictionary(signature_text)
    except StructuredFieldError as exc:
        raise rejected(Rejection.MALFORMED, f"unreadable signature fields: {exc}") from exc

    has_body = request.method in BODY_METHODS or bool(request.body)
    first_missing: list[str] | None = None
    for label, member in inputs.items():
        if not isinstance(member, InnerList):
            raise rejected(Rejection.MALFORMED, f"signature {label!r} input is not a list")
        names = [item.value for item in member.items]
        if not all(isinstance(name, str) for name in names):
            raise rejected(Rejection.MALFORMED, f"signature {label!r} covers a non-string")
        missing = _rfc9421_missing([str(name) for name in names], has_body, member.params)
        if missing:
            first_missing = first_missing if first_missing is not None else missing
            continue
        return _rfc9421_candidate(request, label, member, signatures, policy, now)
    raise rejected(
        Rejection.INSUFFICIENT_COVERAGE,
        f"no signature covers {', '.join(first_missing or ['anything'])}",
    )


def _rfc9421_candidate(
    request: HttpRequest,
    label: str,
    inner: InnerList,
    signatures: Mapping[str, Item | InnerList],
    policy: VerificationPolicy,
    now: datetime,
) -> SignatureCandidate:
    signature_member = signatures.get(label)
    if not isinstance(signature_member, Item) or not isinstance(signature_member.value, bytes):
        raise rejected(Rejection.MALFORMED, f"no Signature for label {label!r}")
    signature = signature_member.value
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise rejected(Rejection.MALFORMED, "signature missing or too long")
    params = inner.params
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id or len(key_id) > MAX_KEY_ID_CHARS:
        raise rejected(Rejection.MALFORMED, "keyid missing or too long")
    alg = params.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in RFC9421_ALGORITHMS):
        raise rejected(Rejection.UNSUPPORTED_ALGORITHM, f"alg {alg!r}")
    names = [str(item.value) for item in inner.items]
    if len(names) > MAX_COVERED or len(set(names)) != len(names):
        raise rejected(Rejection.MALFORMED, "covered components must be distinct")

    created = unix_time(params["created"], "created") if "created" in params else None
    expires = unix_time(params["expires"], "expires") if "expires" in params else None
    if created is None:
        created = parse_http_date(covered_value(request, "date"))
    check_time(created, expires, policy, now)
    if "content-digest" in names:
        _check_content_digest(request)
    try:
        base = _rfc9421_base(request, inner).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise rejected(Rejection.MALFORMED, "non-Latin-1 text in a covered component") from exc
    return SignatureCandidate(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=alg,
        signature=signature,
        bases=(base,),
        covered=tuple(names),
        created=created,
        label=label,
    )
