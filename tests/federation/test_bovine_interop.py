"""Signatures and proofs checked by bovine (PyPI `bovine`), a library no one here wrote."""

from __future__ import annotations

import asyncio

import pytest
from bovine.crypto.http_signature import build_signature
from bovine.crypto.signature_checker import SignatureChecker
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret

from holdfast.federation.httpsig import (
    HttpRequest,
    body_digest,
    http_date,
    sign_request,
    verify_request,
)
from holdfast.federation.keys import InstanceKeys, ResolvedKey
from holdfast.federation.proofs import create_proof, verify_proof

pytestmark = pytest.mark.interop

ACTOR = "https://a.example/actor"
KEY_ID = ACTOR + "#main-key"
INBOX = "https://b.example/inbox"
BODY = b'{"type": "Create", "actor": "https://a.example/actor"}'


def test_bovine_accepts_our_signed_post_and_get(instance_keys: InstanceKeys) -> None:
    async def retrieve(key_id: str) -> CryptographicIdentifier | None:
        if key_id != KEY_ID:
            return None
        return CryptographicIdentifier.from_pem(instance_keys.rsa_public_pem, ACTOR)

    checker = SignatureChecker(retrieve)

    async def body() -> bytes:
        return BODY

    headers = sign_request(
        "POST", INBOX, private_key=instance_keys.rsa_private, key_id=KEY_ID, body=BODY
    )
    lowered = {name.lower(): value for name, value in headers.items()}
    assert asyncio.run(checker.validate_signature("post", INBOX, lowered, body)) == ACTOR

    url = "https://b.example/actor"
    headers = sign_request("GET", url, private_key=instance_keys.rsa_private, key_id=KEY_ID)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert asyncio.run(checker.validate_signature("get", url, lowered, None)) == ACTOR

    elsewhere = dict(lowered, host="c.example")
    assert asyncio.run(checker.validate_signature("get", url, elsewhere, None)) is None


def test_we_accept_bovines_signed_post(instance_keys: InstanceKeys) -> None:
    date = http_date()
    digest = body_digest(BODY)
    secret = CryptographicSecret(KEY_ID, instance_keys.rsa_private)
    signature = (
        build_signature("b.example", "post", "/inbox")
        .with_field("date", date)
        .with_field("digest", digest)
        .sign_for_http_draft(secret)
    )
    headers = {"Host": "b.example", "Date": date, "Digest": digest, "Signature": signature}
    request = HttpRequest.build("POST", INBOX, headers, BODY)

    async def resolve(key_id: str, *, refresh: bool) -> ResolvedKey | None:
        return ResolvedKey(KEY_ID, ACTOR, instance_keys.rsa_public) if key_id == KEY_ID else None

    verified = asyncio.run(verify_request(request, resolve))
    assert verified.owner == ACTOR


def test_object_proofs_both_ways(instance_keys: InstanceKeys) -> None:
    document = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/data-integrity/v2",
        ],
        "id": "https://a.example/uploads/1",
        "type": "Page",
        "attributedTo": ACTOR,
        "name": "Sea surface temperature",
    }
    identifier = CryptographicIdentifier(controller=ACTOR, public_key=instance_keys.ed25519_public)
    # bovine 0.5 hashes a proof's "@context" under the wrong name, so it verifies
    # proofs made without one; the document's own @context is signed either way.
    ours = create_proof(document, instance_keys.ed25519_private, context_in_proof=False)
    assert identifier.verify_document(ours) == ACTOR
    altered = dict(ours, name="Another name")
    assert identifier.verify_document(altered) is None

    theirs = CryptographicSecret(
        instance_keys.verification_method, instance_keys.ed25519_private
    ).sign_document(document)
    assert verify_proof(theirs).public_key_multibase == instance_keys.public_key_multibase


def test_fetch_with_query_signed_as_bovine_checks_it(instance_keys: InstanceKeys) -> None:
    async def retrieve(key_id: str) -> CryptographicIdentifier | None:
        return CryptographicIdentifier.from_pem(instance_keys.rsa_public_pem, ACTOR)

    checker = SignatureChecker(retrieve)
    url = "https://b.example/outbox?page=2"

    def check(sign_query: bool) -> str | None:
        headers = sign_request(
            "GET", url, private_key=instance_keys.rsa_private, key_id=KEY_ID, sign_query=sign_query
        )
        lowered = {name.lower(): value for name, value in headers.items()}
        return asyncio.run(checker.validate_signature("get", url, lowered, None))

    # bovine, like Mastodon, checks the path without the query string.
    assert check(sign_query=False) == ACTOR
    assert check(sign_query=True) is None

    async def resolve(key_id: str, *, refresh: bool) -> ResolvedKey | None:
        return ResolvedKey(KEY_ID, ACTOR, instance_keys.rsa_public)

    # We accept both forms of a fetch.
    for sign_query in (True, False):
        headers = sign_request(
            "GET", url, private_key=instance_keys.rsa_private, key_id=KEY_ID, sign_query=sign_query
        )
        verified = asyncio.run(verify_request(HttpRequest.build("GET", url, headers), resolve))
        assert verified.owner == ACTOR
