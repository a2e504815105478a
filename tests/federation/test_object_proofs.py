"""FEP-8b32 object proofs (eddsa-jcs-2022), checked against the W3C vc-di-eddsa vector."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from holdfast.federation.errors import ProofCreationError, ProofFailure, ProofRejected
from holdfast.federation.keys import (
    InstanceKeys,
    ed25519_private_from_multibase,
    multibase_decode,
    multibase_encode,
    multikey_block,
)
from holdfast.federation.proofs import (
    canonical_json,
    check_proof_owner,
    create_proof,
    owner_of,
    verify_proof,
    verify_proof_json,
)
from tests.federation.helpers import DATA, load_vector

VECTOR = load_vector("vc-di-eddsa-jcs-2022.json")
W3C_KEY = ed25519_private_from_multibase(VECTOR["keyPair"]["secretKeyMultibase"])


def test_w3c_vector_intermediate_values() -> None:
    document = VECTOR["unsignedDocument"]
    options = VECTOR["proofOptions"]
    assert rfc8785.dumps(document).decode() == VECTOR["canonicalDocument"]
    assert hashlib.sha256(rfc8785.dumps(document)).hexdigest() == VECTOR["documentHashHex"]
    assert rfc8785.dumps(options).decode() == VECTOR["canonicalProofOptions"]
    assert hashlib.sha256(rfc8785.dumps(options)).hexdigest() == VECTOR["proofOptionsHashHex"]
    assert VECTOR["combinedHashHex"] == VECTOR["proofOptionsHashHex"] + VECTOR["documentHashHex"]
    assert multibase_decode(VECTOR["proofValue"]).hex() == VECTOR["signatureHex"]


def test_create_proof_reproduces_w3c_vector_byte_for_byte() -> None:
    signed = create_proof(
        VECTOR["unsignedDocument"],
        W3C_KEY,
        verification_method=VECTOR["proofOptions"]["verificationMethod"],
        created=VECTOR["proofOptions"]["created"],
    )
    assert signed["proof"]["proofValue"] == VECTOR["proofValue"]
    expected = dict(VECTOR["proofOptions"], proofValue=VECTOR["proofValue"])
    assert signed["proof"] == expected
    # The did:key of the signing key is the default verification method.
    by_default = create_proof(VECTOR["unsignedDocument"], W3C_KEY, created="2023-02-24T23:36:38Z")
    assert by_default["proof"] == expected


def test_w3c_signed_credential_verifies_from_raw_bytes() -> None:
    raw = (DATA / "vc-di-eddsa-jcs-2022-signed.json").read_bytes()
    document, verified = verify_proof_json(raw)
    assert verified.public_key_multibase == VECTOR["keyPair"]["publicKeyMultibase"]
    assert verified.created == datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
    assert document["id"] == VECTOR["unsignedDocument"]["id"]


def test_every_byte_of_the_signed_content_matters() -> None:
    raw = (DATA / "vc-di-eddsa-jcs-2022-signed.json").read_text()
    tampered = raw.replace("The School of Examples", "The School of Examplez")
    with pytest.raises(ProofRejected) as caught:
        verify_proof_json(tampered)
    assert caught.value.reason is ProofFailure.INVALID_SIGNATURE
    tampered_proof = raw.replace("2023-02-24T23:36:38Z", "2023-02-24T23:36:39Z")
    with pytest.raises(ProofRejected) as caught:
        verify_proof_json(tampered_proof)
    assert caught.value.reason is ProofFailure.INVALID_SIGNATURE


def test_whitespace_and_key_order_do_not_matter() -> None:
    raw = (DATA / "vc-di-eddsa-jcs-2022-signed.json").read_text()
    reordered = json.dumps(dict(reversed(list(json.loads(raw).items()))), separators=(",", ":"))
    verify_proof_json(reordered)


def test_sign_and_verify_an_activity(instance_keys: InstanceKeys) -> None:
    activity = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/data-integrity/v2",
        ],
        "id": "https://a.example/activities/1",
        "type": "Create",
        "actor": "https://a.example/actor",
        "object": {
            "id": "https://a.example/uploads/abc",
            "type": "Page",
            "name": "Sea surface temperature",
        },
    }
    signed = create_proof(activity, instance_keys.ed25519_private)
    assert "proof" not in activity
    assert signed["proof"]["@context"] == activity["@context"]
    verified = verify_proof(signed)
    assert verified.verification_method == instance_keys.verification_method
    assert verified.public_key_multibase == instance_keys.public_key_multibase
    # An actor-hosted verification method needs the key from the caller.
    hosted = create_proof(
        activity,
        instance_keys.ed25519_private,
        verification_method="https://a.example/actor#ed25519-key",
    )
    verify_proof(hosted, public_key=instance_keys.ed25519_public)
    with pytest.raises(ProofRejected) as caught:
        verify_proof(hosted)
    assert caught.value.reason is ProofFailure.UNKNOWN_METHOD


def test_unicode_and_numbers_survive(instance_keys: InstanceKeys) -> None:
    document = {
        "name": "Température de surface — 海面水温 \U0001f30a",
        "size": 1.5e12,
        "count": 3,
        "x": -0.0,
    }
    signed = create_proof(document, instance_keys.ed25519_private)
    raw = json.dumps(signed, ensure_ascii=False).encode()
    verify_proof_json(raw)
    verify_proof_json(json.dumps(signed, ensure_ascii=True))


def _signed(keys: InstanceKeys) -> dict:
    return create_proof(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "https://a.example/o/1",
            "type": "Note",
            "attributedTo": "https://a.example/actor",
            "content": "hello",
        },
        keys.ed25519_private,
    )


def _reason(document: object, **kwargs: object) -> ProofFailure:
    with pytest.raises(ProofRejected) as caught:
        verify_proof(document, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_rejections(instance_keys: InstanceKeys, other_keys: InstanceKeys) -> None:
    good = _signed(instance_keys)
    verify_proof(good)

    def mutate(path: str, value: object = None, delete: bool = False) -> dict:
        document = copy.deepcopy(good)
        target = document["proof"] if path != "@context" else document
        if delete:
            del target[path]
        else:
            target[path] = value
        return document

    no_proof = {k: v for k, v in good.items() if k != "proof"}
    assert _reason(no_proof) is ProofFailure.MISSING
    assert _reason(dict(good, proof=[good["proof"]])) is ProofFailure.UNSUPPORTED
    assert _reason(dict(good, proof="z123")) is ProofFailure.MALFORMED
    assert _reason(mutate("type", "Ed25519Signature2020")) is ProofFailure.UNSUPPORTED
    assert _reason(mutate("cryptosuite", "eddsa-rdfc-2022")) is ProofFailure.UNSUPPORTED
    assert _reason(mutate("proofPurpose", "authentication")) is ProofFailure.MALFORMED
    assert _reason(mutate("proofValue", delete=True)) is ProofFailure.MALFORMED
    assert (
        _reason(mutate("proofValue", "u" + good["proof"]["proofValue"][1:]))
        is ProofFailure.MALFORMED
    )
    assert _reason(mutate("proofValue", multibase_encode(b"\x01" * 63))) is ProofFailure.MALFORMED
    assert (
        _reason(mutate("proofValue", multibase_encode(b"\x01" * 64)))
        is ProofFailure.INVALID_SIGNATURE
    )
    assert _reason(mutate("verificationMethod", delete=True)) is ProofFailure.MALFORMED
    assert _reason(mutate("verificationMethod", "x" * 5000)) is ProofFailure.MALFORMED
    assert _reason(mutate("verificationMethod", "did:key:zNotAKey")) is ProofFailure.UNKNOWN_METHOD
    assert (
        _reason(mutate("verificationMethod", other_keys.verification_method))
        is ProofFailure.INVALID_SIGNATURE
    )
    assert _reason(mutate("created", "yesterday")) is ProofFailure.MALFORMED
    assert _reason(mutate("expires", "2020-01-01T00:00:00Z")) is ProofFailure.EXPIRED
    assert _reason(mutate("@context", "https://example.com/other")) is ProofFailure.CONTEXT_MISMATCH
    assert _reason(good, public_key=other_keys.ed25519_public) is ProofFailure.KEY_MISMATCH
    assert _reason(["not", "an", "object"]) is ProofFailure.MALFORMED


def test_context_prefix_rule(instance_keys: InstanceKeys) -> None:
    document = {
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "type": "Note",
        "content": "x",
    }
    signed = create_proof(document, instance_keys.ed25519_private)
    # A document context that extends the proof's context keeps the proof valid:
    # the proof's own context is what was signed.
    extended = copy.deepcopy(signed)
    extended["@context"] = [
        "https://www.w3.org/ns/activitystreams",
        {"extra": "https://x.example/extra"},
    ]
    verify_proof(extended)
    reordered = copy.deepcopy(signed)
    reordered["@context"] = [
        {"extra": "https://x.example/extra"},
        "https://www.w3.org/ns/activitystreams",
    ]
    assert _reason(reordered) is ProofFailure.CONTEXT_MISMATCH


def test_ld_signature_beside_the_proof_is_ignored(instance_keys: InstanceKeys) -> None:
    signed = _signed(instance_keys)
    signed["signature"] = {"type": "RsaSignature2017", "signatureValue": "abc"}
    verify_proof(signed)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": 1, "a": 2}', ProofFailure.MALFORMED),
        (b'{"a": NaN}', ProofFailure.MALFORMED),
        (b'{"a": Infinity}', ProofFailure.MALFORMED),
        (b"\xff\xfe{}", ProofFailure.MALFORMED),
        (b"[" * 100 + b"]" * 100, ProofFailure.MALFORMED),
        (b"[" * 100000 + b"]" * 100000, ProofFailure.MALFORMED),
        (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', ProofFailure.TOO_LARGE),
        (b"[1, 2]", ProofFailure.MALFORMED),
        (b"{", ProofFailure.MALFORMED),
    ],
)
def test_untrustworthy_json_is_refused(raw: bytes, reason: ProofFailure) -> None:
    with pytest.raises(ProofRejected) as caught:
        verify_proof_json(raw)
    assert caught.value.reason is reason


def test_non_canonicalisable_content_is_refused(instance_keys: InstanceKeys) -> None:
    signed = _signed(instance_keys)
    raw = json.dumps(signed)[:-1] + ', "big": 12345678901234567890}'
    with pytest.raises(ProofRejected) as caught:
        verify_proof_json(raw)
    assert caught.value.reason is ProofFailure.MALFORMED
    lone = json.dumps(signed)[:-1] + ', "bad": "\\ud800"}'
    with pytest.raises(ProofRejected) as caught:
        verify_proof_json(lone)
    assert caught.value.reason is ProofFailure.MALFORMED


def test_create_proof_refusals(instance_keys: InstanceKeys) -> None:
    signed = _signed(instance_keys)
    with pytest.raises(ProofCreationError):
        create_proof(signed, instance_keys.ed25519_private)
    with pytest.raises(ProofCreationError):
        create_proof({"n": float("nan")}, instance_keys.ed25519_private)
    with pytest.raises(ProofCreationError):
        create_proof({"n": 1}, instance_keys.ed25519_private, created="last tuesday")


def test_owner_checks(instance_keys: InstanceKeys, other_keys: InstanceKeys) -> None:
    actor_id = "https://a.example/actor"
    actor = {
        "id": actor_id,
        "assertionMethod": [multikey_block(actor_id, instance_keys.ed25519_public)],
    }
    signed = _signed(instance_keys)
    assert owner_of(signed) == actor_id
    verified = verify_proof(signed)
    check_proof_owner(signed, verified, actor)

    impostor = {
        "id": actor_id,
        "assertionMethod": [multikey_block(actor_id, other_keys.ed25519_public)],
    }
    with pytest.raises(ProofRejected) as caught:
        check_proof_owner(signed, verified, impostor)
    assert caught.value.reason is ProofFailure.OWNER_MISMATCH

    elsewhere = create_proof(
        {"type": "Note", "attributedTo": "https://b.example/actor"}, instance_keys.ed25519_private
    )
    with pytest.raises(ProofRejected) as caught:
        check_proof_owner(elsewhere, verify_proof(elsewhere), actor)
    assert caught.value.reason is ProofFailure.OWNER_MISMATCH
    assert owner_of({"actor": {"id": actor_id}}) == actor_id
    assert owner_of({"attributedTo": [actor_id, "https://b.example/x"]}) is None


# --------------------------------------------------------------- canonical JSON

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.text(st.characters(max_codepoint=127)), inner)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_canonical_json_is_rfc8785_for_any_json_value(value: object) -> None:
    # The fast path (no floats, ASCII keys) and the fallback both give RFC 8785 bytes.
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": '\u001f\b\t\n\f\r"\\\u007f\u2028', "a": [1, -0, True, None]},
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code point order
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        {"x": 1.5, "y": 1e21},
    ],
)
def test_canonical_json_edge_cases(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"big": 2**53}, {"bad": "\ud800"}, {"nan": float("nan")}])
def test_canonical_json_refuses_what_jcs_cannot_represent(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)
