"""HTTP signatures: published vectors, round trips, another implementation, every rejection."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from holdfast.federation.errors import Rejection, SignatureRejected
from holdfast.federation.httpsig import (
    HttpRequest,
    VerificationPolicy,
    VerifiedSignature,
    body_digest,
    check_signer_is_actor,
    http_date,
    parse_signature,
    rfc9421_signature_base,
    sign_request,
    sign_request_rfc9421,
    verify_request,
)
from holdfast.federation.keys import InstanceKeys, ResolvedKey, load_public_key_pem
from tests.federation.helpers import load_vector

CAVAGE = load_vector("draft-cavage-12-appendix-c.json")
RFC9421 = load_vector("rfc9421-appendix-b.json")
CAVAGE_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
RFC9421_NOW = datetime.fromtimestamp(RFC9421["created"], UTC)
ACTOR = "https://a.example/actor"
KEY_ID = ACTOR + "#main-key"
INBOX = "https://b.example/inbox"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
COVERED = "(request-target) host date digest"


class Resolver:
    """A key resolver that records its calls; `fresh` is what a re-fetch would find."""

    def __init__(self, cached: ResolvedKey | None, fresh: ResolvedKey | None = None) -> None:
        self.cached = cached
        self.fresh = fresh if fresh is not None else cached
        self.calls: list[tuple[str, bool]] = []

    async def __call__(self, key_id: str, *, refresh: bool) -> ResolvedKey | None:
        self.calls.append((key_id, refresh))
        return self.fresh if refresh else self.cached


def resolved(key: Any, key_id: str = KEY_ID, owner: str = ACTOR) -> ResolvedKey:
    public = key.public_key() if hasattr(key, "public_key") else key
    return ResolvedKey(key_id=key_id, owner=owner, public_key=public)


def verify(
    request: HttpRequest,
    resolver: Resolver,
    *,
    now: datetime = NOW,
    policy: VerificationPolicy | None = None,
) -> VerifiedSignature:
    return asyncio.run(verify_request(request, resolver, policy=policy, now=now))


def rejection(request: HttpRequest, resolver: Resolver, **kwargs: Any) -> Rejection:
    with pytest.raises(SignatureRejected) as caught:
        verify(request, resolver, **kwargs)
    return caught.value.reason


def signed_post(
    keys: InstanceKeys, body: bytes = b'{"type": "Create"}', url: str = INBOX
) -> HttpRequest:
    headers = sign_request(
        "POST", url, private_key=keys.rsa_private, key_id=KEY_ID, body=body, now=NOW
    )
    headers["Content-Type"] = "application/activity+json"
    return HttpRequest.build("POST", url, headers, body)


def signed_get(keys: InstanceKeys, url: str = "https://b.example/actor") -> HttpRequest:
    headers = sign_request("GET", url, private_key=keys.rsa_private, key_id=KEY_ID, now=NOW)
    return HttpRequest.build("GET", url, headers)


def post_at(private: Any, now: datetime, body: bytes = b"{}") -> HttpRequest:
    """A draft-cavage signed POST to INBOX made at `now`."""
    headers = sign_request("POST", INBOX, private_key=private, key_id=KEY_ID, body=body, now=now)
    return HttpRequest.build("POST", INBOX, headers, body)


def rfc9421_post(
    private: Any, *, body: bytes = b"{}", sent: bytes | None = None, now: datetime = NOW
) -> tuple[dict[str, str], HttpRequest]:
    """An RFC 9421 signed POST to INBOX over `body` (carrying `sent` instead, if given)."""
    headers = sign_request_rfc9421(
        "POST", INBOX, private_key=private, key_id=KEY_ID, body=body, now=now
    )
    return headers, HttpRequest.build("POST", INBOX, headers, body if sent is None else sent)


def inbox_lines(*middle: tuple[str, str], digest: str | None = None) -> list[tuple[str, str]]:
    """Signed lines of a POST to /inbox of `{}`: target, host, `middle`, digest."""
    return [
        ("(request-target)", "post /inbox"),
        ("host", "b.example"),
        *middle,
        ("digest", digest or body_digest(b"{}")),
    ]


def replace_header(request: HttpRequest, name: str, value: str | None) -> HttpRequest:
    kept = [(k, v) for k, v in request.headers if k != name.lower()]
    if value is not None:
        kept.append((name.lower(), value))
    return HttpRequest(request.method, request.url, tuple(kept), request.body)


def cavage_signed(
    keys: InstanceKeys,
    lines: list[tuple[str, str]],
    params: str,
    *,
    method: str = "POST",
    url: str = INBOX,
    extra: dict[str, str] | None = None,
    body: bytes = b"{}",
) -> HttpRequest:
    """A hand-made draft-cavage signature over `lines`, for shapes sign_request never makes."""
    text = "\n".join(f"{name}: {value}" for name, value in lines).encode()
    signature = base64.b64encode(keys.rsa_private.sign(text, padding.PKCS1v15(), hashes.SHA256()))
    headers = {name.title(): value for name, value in lines if not name.startswith("(")}
    headers.update(extra or {})
    headers["Signature"] = f'keyId="{KEY_ID}",{params},signature="{signature.decode()}"'
    return HttpRequest.build(method, url, headers, body)


# --- published vectors -------------------------------------------------------


def _cavage_request(signature_name: str) -> HttpRequest:
    vector = CAVAGE["signatures"][signature_name]
    request = CAVAGE["request"]
    headers = list(map(tuple, request["headers"]))
    params = f'keyId="Test",algorithm="rsa-sha256",signature="{vector["signature"]}"'
    if vector["headers"]:
        params = params.replace(",signature=", f',headers="{vector["headers"]}",signature=')
    headers.append(("Signature", params))
    return HttpRequest.build(request["method"], request["url"], headers, request["body"].encode())


CAVAGE_KEY = ResolvedKey(
    "Test", "https://example.com/actor", load_public_key_pem(CAVAGE["publicKeyPem"])
)
SMALL_KEYS_OK = VerificationPolicy(min_rsa_bits=1024)


def test_cavage_c3_verifies_and_its_signing_string_matches() -> None:
    request = _cavage_request("C.3")
    candidate = parse_signature(request, policy=SMALL_KEYS_OK, now=CAVAGE_NOW)
    assert candidate.bases[0] == CAVAGE["signatures"]["C.3"]["signingString"].encode()
    verified = verify(request, Resolver(CAVAGE_KEY), now=CAVAGE_NOW, policy=SMALL_KEYS_OK)
    assert verified.scheme == "draft-cavage"
    assert verified.owner == "https://example.com/actor"
    assert verified.covered == tuple(CAVAGE["signatures"]["C.3"]["headers"].split())


def test_cavage_c1_and_c2_do_not_cover_enough_for_a_post() -> None:
    for name in ("C.1", "C.2"):
        reason = rejection(
            _cavage_request(name), Resolver(CAVAGE_KEY), now=CAVAGE_NOW, policy=SMALL_KEYS_OK
        )
        assert reason is Rejection.INSUFFICIENT_COVERAGE


def test_cavage_test_key_is_too_weak_by_default() -> None:
    assert (
        rejection(_cavage_request("C.3"), Resolver(CAVAGE_KEY), now=CAVAGE_NOW)
        is Rejection.WEAK_KEY
    )


def test_sign_request_matches_the_draft_byte_for_byte() -> None:
    private = serialization.load_pem_private_key(CAVAGE["privateKeyPem"].encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    request = CAVAGE["request"]
    headers = sign_request(
        "POST",
        request["url"],
        private_key=private,
        key_id="Test",
        body=request["body"].encode(),
        now=CAVAGE_NOW,
    )
    vector_headers = dict(request["headers"])
    assert headers["Host"] == vector_headers["Host"]
    assert headers["Date"] == vector_headers["Date"]
    assert headers["Digest"] == vector_headers["Digest"]
    signing_string = (
        CAVAGE["signatures"]["C.2"]["signingString"] + "\ndigest: " + vector_headers["Digest"]
    )
    expected = base64.b64encode(
        private.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    )
    assert headers["Signature"] == (
        f'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date digest",'
        f'signature="{expected.decode()}"'
    )
    # The draft's own C.2 signature is the same construction without the digest line.
    basic = private.sign(
        CAVAGE["signatures"]["C.2"]["signingString"].encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert base64.b64encode(basic).decode() == CAVAGE["signatures"]["C.2"]["signature"]


def _rfc9421_request(name: str, body: bytes | None = None) -> HttpRequest:
    request = RFC9421["request"]
    signature = RFC9421["signatures"][name]
    headers = [
        *map(tuple, request["headers"]),
        ("Signature-Input", signature["signatureInput"]),
        ("Signature", signature["signature"]),
    ]
    return HttpRequest.build(
        request["method"],
        request["url"],
        headers,
        request["body"].encode() if body is None else body,
    )


def _rfc9421_key(name: str) -> ResolvedKey:
    return ResolvedKey(
        name,
        "https://example.com/actor",
        load_public_key_pem(RFC9421["keys"][name]["publicKeyPem"]),
    )


def test_rfc9421_b26_base_and_ed25519_signature_byte_for_byte() -> None:
    request = _rfc9421_request("B.2.6")
    base = rfc9421_signature_base(request, "sig-b26")
    assert base == RFC9421["signatures"]["B.2.6"]["signatureBase"].encode()
    private = serialization.load_pem_private_key(
        RFC9421["keys"]["test-key-ed25519"]["privateKeyPem"].encode(), None
    )
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    expected = RFC9421["signatures"]["B.2.6"]["signature"].split("=:", 1)[1].rstrip(":")
    assert base64.b64encode(private.sign(base)).decode() == expected
    # Without a signed digest, the B.2.6 signature does not authenticate a POST body.
    assert rejection(request, Resolver(_rfc9421_key("test-key-ed25519")), now=RFC9421_NOW) is (
        Rejection.INSUFFICIENT_COVERAGE
    )


def test_rfc9421_b23_full_coverage_verifies() -> None:
    request = _rfc9421_request("B.2.3")
    assert (
        rfc9421_signature_base(request, "sig-b23")
        == RFC9421["signatures"]["B.2.3"]["signatureBase"].encode()
    )
    verified = verify(request, Resolver(_rfc9421_key("test-key-rsa-pss")), now=RFC9421_NOW)
    assert verified.scheme == "rfc9421"
    assert verified.label == "sig-b23"
    assert verified.created == RFC9421_NOW
    assert "content-digest" in verified.covered


def test_rfc9421_b23_with_another_body_or_date_is_refused() -> None:
    resolver = Resolver(_rfc9421_key("test-key-rsa-pss"))
    assert rejection(
        _rfc9421_request("B.2.3", body=b'{"hello": "there"}'), resolver, now=RFC9421_NOW
    ) is (Rejection.DIGEST_MISMATCH)
    moved = replace_header(_rfc9421_request("B.2.3"), "Date", "Tue, 20 Apr 2021 02:07:56 GMT")
    assert rejection(moved, resolver, now=RFC9421_NOW) is Rejection.BAD_SIGNATURE


def test_rfc9421_b21_minimal_signature_covers_too_little() -> None:
    assert rejection(
        _rfc9421_request("B.2.1"), Resolver(_rfc9421_key("test-key-rsa-pss")), now=RFC9421_NOW
    ) is (Rejection.INSUFFICIENT_COVERAGE)


# --- round trips ---------------------------------------------------------------


def test_signed_post_verifies(instance_keys: InstanceKeys) -> None:
    request = signed_post(instance_keys)
    assert request.header("digest") == body_digest(request.body)
    verified = verify(request, Resolver(resolved(instance_keys.rsa_private)))
    assert verified.covered == ("(request-target)", "host", "date", "digest")
    assert verified.owner == ACTOR
    assert verified.key_id == KEY_ID
    assert verified.created == NOW


def test_signed_get_verifies_and_covers_host(instance_keys: InstanceKeys) -> None:
    request = signed_get(instance_keys, "https://b.example:8443/outbox?page=2")
    assert request.header("host") == "b.example:8443"
    verified = verify(request, Resolver(resolved(instance_keys.rsa_private)))
    assert verified.covered == ("(request-target)", "host", "date")


def test_mastodon_style_fetch_without_query_in_target_verifies(instance_keys: InstanceKeys) -> None:
    url = "https://b.example/outbox?page=true"
    lines = [("(request-target)", "get /outbox"), ("host", "b.example"), ("date", http_date(NOW))]
    request = cavage_signed(
        instance_keys,
        lines,
        'algorithm="rsa-sha256",headers="(request-target) host date"',
        method="GET",
        url=url,
        body=b"",
    )
    verify(request, Resolver(resolved(instance_keys.rsa_private)))


def test_hs2019_with_created_verifies(instance_keys: InstanceKeys) -> None:
    created = int(NOW.timestamp())
    lines = inbox_lines(("(created)", str(created)))
    request = cavage_signed(
        instance_keys,
        lines,
        f'algorithm="hs2019",created={created},headers="(request-target) host (created) digest"',
    )
    verified = verify(request, Resolver(resolved(instance_keys.rsa_private)))
    assert verified.created == NOW


def test_rfc9421_round_trip_rsa_and_ed25519(instance_keys: InstanceKeys) -> None:
    body = b'{"type": "Follow"}'
    for private in (instance_keys.rsa_private, instance_keys.ed25519_private):
        _headers, request = rfc9421_post(private, body=body)
        verified = verify(request, Resolver(resolved(private)))
        assert verified.scheme == "rfc9421"
        assert verified.covered == ("@method", "@target-uri", "content-digest")
        get_headers = sign_request_rfc9421(
            "GET", ACTOR, private_key=private, key_id=KEY_ID, now=NOW
        )
        verify(HttpRequest.build("GET", ACTOR, get_headers), Resolver(resolved(private)))


class _Message:
    """The request interface the http-message-signatures package signs and verifies."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


def test_interop_with_http_message_signatures_package(instance_keys: InstanceKeys) -> None:
    import http_message_signatures as hms
    from http_message_signatures import algorithms

    body = b'{"type": "Create"}'
    keys = hms.MappingKeyResolver(
        public_keys={KEY_ID: instance_keys.rsa_public},
        private_keys={KEY_ID: instance_keys.rsa_private},
    )
    # They sign, we verify.
    message = _Message("POST", INBOX, {"Content-Type": "application/activity+json"})
    signer = hms.HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=keys
    )
    signer.sign(
        message,
        key_id=KEY_ID,
        created=NOW,
        covered_component_ids=("@method", "@target-uri"),
        body=body,
    )
    request = HttpRequest.build("POST", INBOX, message.headers, body)
    verified = verify(request, Resolver(resolved(instance_keys.rsa_private)))
    assert "content-digest" in verified.covered
    # We sign, they verify.
    ours = sign_request_rfc9421(
        "POST", INBOX, private_key=instance_keys.rsa_private, key_id=KEY_ID, body=body
    )
    theirs = _Message("POST", INBOX, dict(ours))
    verifier = hms.HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=keys
    )
    results = verifier.verify(theirs, body=body, require_components=("@method", "@target-uri"))
    assert results[0].parameters["keyid"] == KEY_ID
    tampered = _Message("POST", INBOX + "2", dict(ours))
    with pytest.raises(hms.InvalidSignature):
        verifier.verify(tampered, body=body)


# --- key rotation and the resolver hook ----------------------------------------


def test_key_rotation_refetches_once(instance_keys: InstanceKeys, other_keys: InstanceKeys) -> None:
    request = signed_post(instance_keys)
    resolver = Resolver(
        cached=resolved(other_keys.rsa_private), fresh=resolved(instance_keys.rsa_private)
    )
    verify(request, resolver)
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


def test_unknown_key_is_looked_up_once_more(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(cached=None, fresh=None)
    resolver.fresh = None
    assert rejection(signed_post(instance_keys), resolver) is Rejection.UNKNOWN_KEY
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]
    # A first-time key that the re-fetch finds is accepted.
    late = Resolver(cached=None, fresh=resolved(instance_keys.rsa_private))
    verify(signed_post(instance_keys), late)
    assert late.calls == [(KEY_ID, False), (KEY_ID, True)]


def test_wrong_key_after_refresh_is_a_bad_signature(
    instance_keys: InstanceKeys, other_keys: InstanceKeys
) -> None:
    resolver = Resolver(resolved(other_keys.rsa_private))
    assert rejection(signed_post(instance_keys), resolver) is Rejection.BAD_SIGNATURE
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


def test_key_withdrawn_on_refresh_is_unknown(
    instance_keys: InstanceKeys, other_keys: InstanceKeys
) -> None:
    resolver = Resolver(resolved(other_keys.rsa_private))
    resolver.fresh = None
    assert rejection(signed_post(instance_keys), resolver) is Rejection.UNKNOWN_KEY


def test_resolver_answering_another_key_id_is_not_trusted(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private, key_id=ACTOR + "#other-key"))
    assert rejection(signed_post(instance_keys), resolver) is Rejection.UNKNOWN_KEY


# --- every rejection -------------------------------------------------------------


def test_unsigned(instance_keys: InstanceKeys) -> None:
    request = HttpRequest.build("POST", INBOX, {"Host": "b.example", "Date": http_date(NOW)}, b"{}")
    with pytest.raises(SignatureRejected) as caught:
        verify(request, Resolver(resolved(instance_keys.rsa_private)))
    assert caught.value.reason is Rejection.UNSIGNED
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",
        'keyId="x"',
        'keyId="a",keyId="b",signature="AAAA"',
        f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="{COVERED}",signature="***"',
        f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="host {COVERED}",signature="AAAA"',
        f'keyId="{"k" * 3000}",algorithm="rsa-sha256",signature="AAAA"',
        'keyId="a" signature="AAAA"',
    ],
)
def test_malformed_signature_headers(instance_keys: InstanceKeys, signature: str) -> None:
    request = replace_header(signed_post(instance_keys), "Signature", signature)
    assert rejection(request, Resolver(resolved(instance_keys.rsa_private))) is Rejection.MALFORMED


def test_malformed_requests(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private))
    good = signed_post(instance_keys)
    # Two Signature headers.
    doubled = HttpRequest(
        good.method,
        good.url,
        (*good.headers, ("signature", good.header("signature") or "")),
        good.body,
    )
    assert rejection(doubled, resolver) is Rejection.MALFORMED
    # A covered header that is absent.
    assert rejection(replace_header(good, "Digest", None), resolver) is Rejection.MALFORMED
    # An unreadable date.
    assert (
        rejection(replace_header(good, "Date", "yesterday at noon"), resolver)
        is Rejection.MALFORMED
    )
    # A signed Host that is not this server: a request replayed from elsewhere.
    replayed = HttpRequest(good.method, "https://c.example/inbox", good.headers, good.body)
    assert rejection(replayed, resolver) is Rejection.MALFORMED
    # (created) is only defined for hs2019.
    created = int(NOW.timestamp())
    lines = inbox_lines(("(created)", str(created)))
    request = cavage_signed(
        instance_keys,
        lines,
        f'algorithm="rsa-sha256",created={created},'
        'headers="(request-target) host (created) digest"',
    )
    assert rejection(request, resolver) is Rejection.MALFORMED
    # RFC 9421: an input without its signature, and unparseable fields.
    headers, rfc = rfc9421_post(instance_keys.rsa_private)
    assert rejection(replace_header(rfc, "Signature", None), resolver) is Rejection.MALFORMED
    assert (
        rejection(replace_header(rfc, "Signature-Input", 'sig1=("@method"'), resolver)
        is Rejection.MALFORMED
    )
    assert (
        rejection(replace_header(rfc, "Signature", "sig2=:AAAA:"), resolver) is Rejection.MALFORMED
    )
    bad_component = headers["Signature-Input"].replace('"@method"', '"@method";req')
    assert (
        rejection(replace_header(rfc, "Signature-Input", bad_component), resolver)
        is Rejection.MALFORMED
    )
    dup = headers["Signature-Input"].replace(";keyid=", ";created=1;keyid=")
    assert rejection(replace_header(rfc, "Signature-Input", dup), resolver) is Rejection.MALFORMED


def test_too_large(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private))
    big = signed_post(instance_keys, body=b"x" * (1024 * 1024 + 1))
    with pytest.raises(SignatureRejected) as caught:
        verify(big, resolver)
    assert caught.value.reason is Rejection.TOO_LARGE
    assert caught.value.status == 413
    huge_header = replace_header(
        signed_post(instance_keys), "Signature", 'keyId="' + "a" * 9000 + '"'
    )
    assert rejection(huge_header, resolver) is Rejection.TOO_LARGE
    many = ", ".join(f's{i}=("@method");keyid="k"' for i in range(9))
    rfc = replace_header(signed_post(instance_keys), "Signature-Input", many)
    assert rejection(rfc, resolver) is Rejection.TOO_LARGE


def test_unsupported_algorithms(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private))
    good = signed_post(instance_keys)
    hmac_signed = (good.header("signature") or "").replace("rsa-sha256", "hmac-sha256")
    assert (
        rejection(replace_header(good, "Signature", hmac_signed), resolver)
        is Rejection.UNSUPPORTED_ALGORITHM
    )
    headers, rfc = rfc9421_post(instance_keys.rsa_private)
    hmac_input = headers["Signature-Input"].replace('"rsa-v1_5-sha256"', '"hmac-sha256"')
    assert (
        rejection(replace_header(rfc, "Signature-Input", hmac_input), resolver)
        is Rejection.UNSUPPORTED_ALGORITHM
    )


@pytest.mark.parametrize(
    ("method", "covered"),
    [
        ("POST", ["(request-target)", "host", "date"]),  # no digest on a POST
        ("POST", ["host", "date", "digest"]),  # no request target
        ("POST", ["(request-target)", "date", "digest"]),  # no host
        ("POST", ["(request-target)", "host", "digest"]),  # no date
        ("GET", ["(request-target)", "date"]),  # no host on a GET
    ],
)
def test_insufficient_coverage(
    instance_keys: InstanceKeys, method: str, covered: list[str]
) -> None:
    body = b"{}" if method == "POST" else b""
    values = {
        "(request-target)": f"{method.lower()} /inbox",
        "host": "b.example",
        "date": http_date(NOW),
        "digest": body_digest(body),
    }
    lines = [(name, values[name]) for name in covered]
    request = cavage_signed(
        instance_keys,
        lines,
        f'algorithm="rsa-sha256",headers="{" ".join(covered)}"',
        method=method,
        body=body,
        extra={"Host": "b.example", "Date": http_date(NOW)},
    )
    assert (
        rejection(request, Resolver(resolved(instance_keys.rsa_private)))
        is Rejection.INSUFFICIENT_COVERAGE
    )


def test_rfc9421_post_without_content_digest_is_insufficient(instance_keys: InstanceKeys) -> None:
    headers = sign_request_rfc9421(
        "GET", INBOX, private_key=instance_keys.ed25519_private, key_id=KEY_ID, now=NOW
    )
    request = HttpRequest.build("POST", INBOX, headers, b"{}")
    assert (
        rejection(request, Resolver(resolved(instance_keys.ed25519_private)))
        is Rejection.INSUFFICIENT_COVERAGE
    )


def test_digest_mismatch(instance_keys: InstanceKeys) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private))
    good = signed_post(instance_keys)
    altered = HttpRequest(good.method, good.url, good.headers, good.body + b" ")
    assert rejection(altered, resolver) is Rejection.DIGEST_MISMATCH
    md5_only = cavage_signed(
        instance_keys,
        inbox_lines(
            ("date", http_date(NOW)),
            digest="MD5=" + base64.b64encode(hashlib.md5(b"{}").digest()).decode(),
        ),
        'algorithm="rsa-sha256",headers="(request-target) host date digest"',
    )
    assert rejection(md5_only, resolver) is Rejection.DIGEST_MISMATCH
    _headers, rfc = rfc9421_post(instance_keys.rsa_private, sent=b"[]")
    assert rejection(rfc, resolver) is Rejection.DIGEST_MISMATCH


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (timedelta(hours=-2), Rejection.STALE),
        (timedelta(hours=-13), Rejection.STALE),
        (timedelta(minutes=30), Rejection.FUTURE),
        (timedelta(days=3), Rejection.FUTURE),
    ],
)
def test_dates_outside_the_window(
    instance_keys: InstanceKeys, offset: timedelta, reason: Rejection
) -> None:
    resolver = Resolver(resolved(instance_keys.rsa_private))
    assert rejection(post_at(instance_keys.rsa_private, NOW + offset), resolver) is reason
    _headers, rfc = rfc9421_post(instance_keys.rsa_private, now=NOW + offset)
    assert rejection(rfc, resolver) is reason


def test_skew_is_configurable(instance_keys: InstanceKeys) -> None:
    request = post_at(instance_keys.rsa_private, NOW - timedelta(hours=2))
    lenient = VerificationPolicy(max_age=timedelta(hours=3))
    verify(request, Resolver(resolved(instance_keys.rsa_private)), policy=lenient)
    strict = VerificationPolicy(max_age=timedelta(seconds=30))
    recent = post_at(instance_keys.rsa_private, NOW - timedelta(minutes=1))
    assert (
        rejection(recent, Resolver(resolved(instance_keys.rsa_private)), policy=strict)
        is Rejection.STALE
    )


def test_expired_hs2019_signature(instance_keys: InstanceKeys) -> None:
    created = int((NOW - timedelta(minutes=30)).timestamp())
    expires = int((NOW - timedelta(minutes=20)).timestamp())
    lines = inbox_lines(("(created)", str(created)), ("(expires)", str(expires)))
    request = cavage_signed(
        instance_keys,
        lines,
        f'algorithm="hs2019",created={created},expires={expires},'
        'headers="(request-target) host (created) (expires) digest"',
    )
    assert rejection(request, Resolver(resolved(instance_keys.rsa_private))) is Rejection.EXPIRED


def test_weak_key(instance_keys: InstanceKeys) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert rejection(post_at(small, NOW), Resolver(resolved(small))) is Rejection.WEAK_KEY


def test_bad_signature_when_key_type_differs(instance_keys: InstanceKeys) -> None:
    request = signed_post(instance_keys)
    assert (
        rejection(request, Resolver(resolved(instance_keys.ed25519_private)))
        is Rejection.BAD_SIGNATURE
    )


def test_post_query_is_not_dropped_from_the_target(instance_keys: InstanceKeys) -> None:
    # The path-only fallback is for fetches; a POST must be signed as addressed.
    request = cavage_signed(
        instance_keys,
        inbox_lines(("date", http_date(NOW))),
        'algorithm="rsa-sha256",headers="(request-target) host date digest"',
        url=INBOX + "?x=1",
    )
    assert (
        rejection(request, Resolver(resolved(instance_keys.rsa_private))) is Rejection.BAD_SIGNATURE
    )


# --- the signer must be the actor -------------------------------------------------


@pytest.mark.parametrize(
    ("activity", "accepted"),
    [
        ({"type": "Create", "actor": ACTOR}, True),
        ({"type": "Create", "actor": {"id": ACTOR, "type": "Service"}}, True),
        ({"type": "Create", "actor": "https://c.example/actor"}, False),
        ({"type": "Create", "actor": {"type": "Service"}}, False),
        ({"type": "Create"}, False),
        ({"type": "Create", "actor": [ACTOR]}, False),
    ],
)
def test_signer_must_be_the_actor(
    instance_keys: InstanceKeys, activity: dict[str, Any], accepted: bool
) -> None:
    verified = verify(signed_post(instance_keys), Resolver(resolved(instance_keys.rsa_private)))
    check: Callable[[], None] = lambda: check_signer_is_actor(verified, activity)  # noqa: E731
    if accepted:
        check()
    else:
        with pytest.raises(SignatureRejected) as caught:
            check()
        assert caught.value.reason is Rejection.SIGNER_NOT_ACTOR
