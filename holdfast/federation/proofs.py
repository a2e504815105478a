"""Object integrity proofs: FEP-8b32 with the `eddsa-jcs-2022` cryptosuite.

A proof lets anyone check, long after delivery and without asking the origin,
that an object is exactly what its origin published. We follow W3C
"Data Integrity EdDSA Cryptosuites v1.0" section 3.3 (eddsa-jcs-2022):

- proof configuration = the proof options (without `proofValue`), carrying the
  document's `@context`, canonicalised with JCS (RFC 8785);
- transformed document = the document without `proof`, canonicalised with JCS;
- hash data = SHA-256(proof configuration) || SHA-256(transformed document);
- `proofValue` = multibase base58btc of the Ed25519 signature over the hash data.

Verification works on the parsed form of the bytes as received (see
`verify_proof_json`); nothing is re-serialised except through JCS, which is the
form that was signed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from holdfast.federation.errors import (
    KeyFormatError,
    ProofCreationError,
    ProofFailure,
    ProofRejected,
)
from holdfast.federation.keys import (
    actor_assertion_keys,
    ed25519_public_from_did_key,
    ed25519_public_multibase,
    is_did_key,
    multibase_decode,
    multibase_encode,
)
from holdfast.federation.strictjson import JSONMalformed, JSONTooLarge, loads_strict

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_PURPOSE = "assertionMethod"
MAX_VERIFICATION_METHOD_CHARS = 2048

# xsd:dateTime, the form `created` and `expires` must take.
_XSD_DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def canonical_json(value: Any) -> bytes:
    """JCS (RFC 8785) bytes of a JSON value; raises ValueError when it has none."""
    if _plain(value, 0):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except (UnicodeEncodeError, ValueError):
            pass  # e.g. a lone surrogate: the full canonicalizer says what is wrong
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(str(exc)) from exc


# Integers JCS can represent exactly (IEEE 754 doubles).
_MAX_SAFE_INTEGER = 2**53 - 1
_MAX_PLAIN_DEPTH = 64


def _plain(value: Any, depth: int) -> bool:
    """True when JCS of `value` is `json.dumps` with sorted keys, no spaces and UTF-8:
    no floats, integers JCS can hold, and every object key ASCII (so sorting by code
    point is sorting by UTF-16 unit). JCS escapes what `json.dumps` escapes: quote,
    backslash, and control characters (short forms, else lowercase \\u00xx)."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if depth > _MAX_PLAIN_DEPTH:
        return False
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and k.isascii() and _plain(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_plain(v, depth + 1) for v in value)
    return False


def _hash_data(unsecured: Mapping[str, Any], proof_config: Mapping[str, Any]) -> bytes:
    config_hash = hashlib.sha256(canonical_json(proof_config)).digest()
    document_hash = hashlib.sha256(canonical_json(unsecured)).digest()
    return config_hash + document_hash


def format_datetime(moment: datetime) -> str:
    """xsd:dateTime in UTC to the second, as proofs conventionally carry it."""
    if moment.tzinfo is None:
        raise ValueError("a proof time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object) -> datetime:
    """Read an xsd:dateTime; a value without a zone is taken as UTC."""
    if not isinstance(value, str) or len(value) > 64 or not _XSD_DATETIME.match(value):
        raise ValueError(f"not an xsd:dateTime: {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an xsd:dateTime: {value!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def create_proof(
    document: Mapping[str, Any],
    private_key: ed25519.Ed25519PrivateKey,
    *,
    verification_method: str | None = None,
    created: datetime | str | None = None,
    context_in_proof: bool = True,
) -> dict[str, Any]:
    """Return a copy of `document` with an `eddsa-jcs-2022` proof added.

    `verification_method` defaults to the key's own did:key URL, so the proof
    can be checked offline. `created` defaults to now. The proof repeats the
    document's `@context`, as vc-di-eddsa does; `context_in_proof=False` leaves it
    out (the document's own `@context` is signed either way), for verifiers such
    as bovine 0.5 that mishandle a proof's `@context`.
    """
    if "proof" in document:
        raise ProofCreationError("document already carries a proof; sign the unsigned form")
    if verification_method is None:
        multibase = ed25519_public_multibase(private_key.public_key())
        verification_method = f"did:key:{multibase}#{multibase}"
    if created is None:
        created = datetime.now(UTC)
    created_text = format_datetime(created) if isinstance(created, datetime) else created
    try:
        parse_datetime(created_text)
    except ValueError as exc:
        raise ProofCreationError(str(exc)) from exc

    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created_text,
        "verificationMethod": verification_method,
        "proofPurpose": PROOF_PURPOSE,
    }
    if context_in_proof and "@context" in document:
        proof["@context"] = document["@context"]
    try:
        hash_data = _hash_data(document, proof)
    except ValueError as exc:
        raise ProofCreationError(f"document has no JCS form: {exc}") from exc
    proof["proofValue"] = multibase_encode(private_key.sign(hash_data))
    signed = dict(document)
    signed["proof"] = proof
    return signed


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a valid proof tells us: which key signed, and when it says it did."""

    verification_method: str
    public_key_multibase: str
    created: datetime | None


def _reject(reason: ProofFailure, detail: str) -> ProofRejected:
    return ProofRejected(reason, detail)


def _as_context_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def verify_proof(
    document: Mapping[str, Any],
    *,
    public_key: ed25519.Ed25519PublicKey | None = None,
    now: datetime | None = None,
) -> VerifiedProof:
    """Check `document`'s `eddsa-jcs-2022` proof; raise `ProofRejected` with the reason.

    A did:key verification method carries its own key. For any other method the
    caller resolves it (e.g. from the actor's `assertionMethod`) and passes
    `public_key`; when both are present they must agree.
    """
    if not isinstance(document, Mapping):
        raise _reject(ProofFailure.MALFORMED, "document is not a JSON object")
    proof = document.get("proof")
    if proof is None:
        raise _reject(ProofFailure.MISSING, "document has no proof")
    if isinstance(proof, list):
        raise _reject(ProofFailure.UNSUPPORTED, "proof sets and chains are not supported")
    if not isinstance(proof, Mapping):
        raise _reject(ProofFailure.MALFORMED, "proof is not a JSON object")
    if proof.get("type") != PROOF_TYPE:
        raise _reject(ProofFailure.UNSUPPORTED, f"proof type {proof.get('type')!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise _reject(ProofFailure.UNSUPPORTED, f"cryptosuite {proof.get('cryptosuite')!r}")
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        raise _reject(ProofFailure.MALFORMED, "proofPurpose must be assertionMethod")
    method = proof.get("verificationMethod")
    if not isinstance(method, str) or not method or len(method) > MAX_VERIFICATION_METHOD_CHARS:
        raise _reject(ProofFailure.MALFORMED, "verificationMethod missing or too long")
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str):
        raise _reject(ProofFailure.MALFORMED, "proofValue missing")
    try:
        signature = multibase_decode(proof_value)
    except KeyFormatError as exc:
        raise _reject(ProofFailure.MALFORMED, f"proofValue: {exc}") from exc
    if len(signature) != 64:
        raise _reject(ProofFailure.MALFORMED, "proofValue is not a 64-byte Ed25519 signature")

    created: datetime | None = None
    try:
        if "created" in proof:
            created = parse_datetime(proof["created"])
        expires = parse_datetime(proof["expires"]) if "expires" in proof else None
    except ValueError as exc:
        raise _reject(ProofFailure.MALFORMED, str(exc)) from exc
    if expires is not None and expires <= (now or datetime.now(UTC)):
        raise _reject(ProofFailure.EXPIRED, f"proof expired at {proof['expires']}")

    key = _verification_key(method, public_key)

    proof_options = {k: v for k, v in proof.items() if k != "proofValue"}
    # An LD signature, if a peer adds one, is made after the proof and is not covered.
    unsecured = {k: v for k, v in document.items() if k not in ("proof", "signature")}
    if "@context" in proof_options:
        proof_context = _as_context_list(proof_options["@context"])
        document_context = _as_context_list(unsecured.get("@context"))
        if "@context" not in unsecured or document_context[: len(proof_context)] != proof_context:
            raise _reject(
                ProofFailure.CONTEXT_MISMATCH,
                "document @context does not start with the proof's @context",
            )
        unsecured["@context"] = proof_options["@context"]
    try:
        hash_data = _hash_data(unsecured, proof_options)
    except ValueError as exc:
        raise _reject(ProofFailure.MALFORMED, f"no JCS form: {exc}") from exc
    try:
        key.verify(signature, hash_data)
    except InvalidSignature as exc:
        raise _reject(ProofFailure.INVALID_SIGNATURE, "signature does not match") from exc
    return VerifiedProof(
        verification_method=method,
        public_key_multibase=ed25519_public_multibase(key),
        created=created,
    )


def _verification_key(
    method: str, public_key: ed25519.Ed25519PublicKey | None
) -> ed25519.Ed25519PublicKey:
    if is_did_key(method):
        try:
            key = ed25519_public_from_did_key(method)
        except KeyFormatError as exc:
            raise _reject(ProofFailure.UNKNOWN_METHOD, f"{method}: {exc}") from exc
        if public_key is not None and ed25519_public_multibase(
            public_key
        ) != ed25519_public_multibase(key):
            raise _reject(ProofFailure.KEY_MISMATCH, "did:key differs from the expected key")
        return key
    if public_key is None:
        raise _reject(ProofFailure.UNKNOWN_METHOD, f"cannot resolve {method} offline")
    return public_key


def verify_proof_json(
    raw: bytes | str,
    *,
    public_key: ed25519.Ed25519PublicKey | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], VerifiedProof]:
    """Parse JSON exactly as received (strictly, bounded) and verify its proof."""
    try:
        document = loads_strict(raw)
    except JSONTooLarge as exc:
        raise _reject(ProofFailure.TOO_LARGE, str(exc)) from exc
    except JSONMalformed as exc:
        raise _reject(ProofFailure.MALFORMED, str(exc)) from exc
    if not isinstance(document, dict):
        raise _reject(ProofFailure.MALFORMED, "document is not a JSON object")
    return document, verify_proof(document, public_key=public_key, now=now)


def _id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def owner_of(document: Mapping[str, Any]) -> str | None:
    """The actor an object speaks for (FEP-fe34): an activity's `actor`, else `attributedTo`."""
    for prop in ("actor", "attributedTo"):
        if prop in document:
            owner = document[prop]
            if isinstance(owner, list):
                owners = {_id_of(item) for item in owner}
                return owners.pop() if len(owners) == 1 else None
            return _id_of(owner)
    return None


def check_proof_owner(
    document: Mapping[str, Any],
    verified: VerifiedProof,
    actor: Mapping[str, Any],
) -> None:
    """Refuse a valid proof made by someone other than the object's owner.

    `actor` is the owner's actor document. Its `id` must be the object's owner,
    and one of its `assertionMethod` Multikeys must be the key that signed.
    """
    owner = owner_of(document)
    actor_id = actor.get("id")
    if owner is None or owner != actor_id:
        raise _reject(ProofFailure.OWNER_MISMATCH, f"object owner {owner!r} is not {actor_id!r}")
    if verified.public_key_multibase not in actor_assertion_keys(actor):
        raise _reject(
            ProofFailure.OWNER_MISMATCH,
            f"{actor_id} does not list {verified.public_key_multibase} in assertionMethod",
        )
