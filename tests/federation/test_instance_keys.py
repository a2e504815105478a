"""Instance keys: generation, storage, did:key and Multikey encodings, reading peers' keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from holdfast.federation.errors import KeyFormatError
from holdfast.federation.keys import (
    InstanceKeys,
    actor_assertion_keys,
    base58btc_decode,
    base58btc_encode,
    did_key,
    ed25519_private_from_multibase,
    ed25519_public_from_did_key,
    ed25519_public_from_multibase,
    ed25519_public_multibase,
    ed25519_secret_multibase,
    load_public_key_pem,
    multikey_block,
    public_key_block,
    public_key_from_actor,
)
from tests.federation.helpers import load_vector

VECTOR = load_vector("vc-di-eddsa-jcs-2022.json")


def test_generated_keys_are_rsa_2048_and_ed25519(instance_keys: InstanceKeys) -> None:
    assert isinstance(instance_keys.rsa_private, rsa.RSAPrivateKey)
    assert instance_keys.rsa_private.key_size == 2048
    assert instance_keys.rsa_public.public_numbers().e == 65537
    assert isinstance(instance_keys.ed25519_private, ed25519.Ed25519PrivateKey)


def test_did_key_form(instance_keys: InstanceKeys) -> None:
    multibase = instance_keys.public_key_multibase
    assert multibase.startswith("z6Mk") and len(multibase) == 48
    assert instance_keys.did_key == f"did:key:{multibase}"
    assert instance_keys.verification_method == f"did:key:{multibase}#{multibase}"
    restored = ed25519_public_from_did_key(instance_keys.verification_method)
    assert ed25519_public_multibase(restored) == multibase


def test_w3c_key_pair_round_trips() -> None:
    secret = ed25519_private_from_multibase(VECTOR["keyPair"]["secretKeyMultibase"])
    assert ed25519_public_multibase(secret.public_key()) == VECTOR["keyPair"]["publicKeyMultibase"]
    assert ed25519_secret_multibase(secret) == VECTOR["keyPair"]["secretKeyMultibase"]
    assert did_key(secret.public_key()) == "did:key:" + VECTOR["keyPair"]["publicKeyMultibase"]


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x01", b"\xff" * 40, bytes(range(34))])
def test_base58_round_trip_keeps_leading_zeros(data: bytes) -> None:
    assert base58btc_decode(base58btc_encode(data)) == data


def test_storage_round_trip_plain_and_encrypted(instance_keys: InstanceKeys) -> None:
    for passphrase in (None, b"correct horse"):
        stored = instance_keys.to_storage(passphrase)
        assert set(stored) == {"rsa_private_pem", "ed25519_private_pem"}
        if passphrase:
            assert "ENCRYPTED" in stored["rsa_private_pem"]
        restored = InstanceKeys.from_storage(stored, passphrase)
        assert restored.rsa_public_pem == instance_keys.rsa_public_pem
        assert restored.did_key == instance_keys.did_key


def test_storage_with_wrong_passphrase_is_refused(instance_keys: InstanceKeys) -> None:
    stored = instance_keys.to_storage(b"right")
    with pytest.raises(KeyFormatError):
        InstanceKeys.from_storage(stored, b"wrong")


def test_storage_with_swapped_keys_is_refused(instance_keys: InstanceKeys) -> None:
    stored = instance_keys.to_storage()
    swapped = {
        "rsa_private_pem": stored["ed25519_private_pem"],
        "ed25519_private_pem": stored["rsa_private_pem"],
    }
    with pytest.raises(KeyFormatError):
        InstanceKeys.from_storage(swapped)
    with pytest.raises(KeyFormatError):
        InstanceKeys.from_storage({"rsa_private_pem": stored["rsa_private_pem"]})


def test_small_rsa_key_is_refused_for_an_instance() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyFormatError):
        InstanceKeys(rsa_private=small, ed25519_private=ed25519.Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    "value",
    [
        "did:web:example.com",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",  # secp256k1, not Ed25519
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6Mkother",
        "did:key:mABCD",
        "did:key:z0OIl",
        "did:key:z" + "2" * 300,
    ],
)
def test_bad_did_keys_are_refused(value: str) -> None:
    with pytest.raises(KeyFormatError):
        ed25519_public_from_did_key(value)


def test_multikey_of_wrong_codec_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        ed25519_public_from_multibase(VECTOR["keyPair"]["secretKeyMultibase"])
    with pytest.raises(KeyFormatError):
        ed25519_private_from_multibase(VECTOR["keyPair"]["publicKeyMultibase"])


def test_actor_blocks(instance_keys: InstanceKeys) -> None:
    actor_id = "https://a.example/actor"
    block = public_key_block(actor_id, instance_keys.rsa_public)
    assert block["id"] == actor_id + "#main-key"
    assert block["owner"] == actor_id
    assert block["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    multikey = multikey_block(actor_id, instance_keys.ed25519_public)
    assert multikey == {
        "id": actor_id + "#ed25519-key",
        "type": "Multikey",
        "controller": actor_id,
        "publicKeyMultibase": instance_keys.public_key_multibase,
    }


def test_public_key_from_actor_checks_owner(instance_keys: InstanceKeys) -> None:
    actor_id = "https://a.example/actor"
    actor = {
        "id": actor_id,
        "publicKey": public_key_block(actor_id, instance_keys.rsa_public),
        "assertionMethod": [multikey_block(actor_id, instance_keys.ed25519_public)],
    }
    found = public_key_from_actor(actor, actor_id + "#main-key")
    assert found is not None and found.owner == actor_id
    assert isinstance(found.public_key, rsa.RSAPublicKey)
    multikey = public_key_from_actor(actor, actor_id + "#ed25519-key")
    assert multikey is not None and isinstance(multikey.public_key, ed25519.Ed25519PublicKey)
    assert actor_assertion_keys(actor) == [instance_keys.public_key_multibase]
    assert public_key_from_actor(actor, actor_id + "#other-key") is None

    # A key that claims another owner does not speak for this actor.
    stolen = dict(
        actor, publicKey=public_key_block("https://b.example/actor", instance_keys.rsa_public)
    )
    stolen["publicKey"]["id"] = actor_id + "#main-key"
    assert public_key_from_actor(stolen, actor_id + "#main-key") is None
    foreign = dict(
        actor,
        assertionMethod=[multikey_block("https://b.example/actor", instance_keys.ed25519_public)],
    )
    assert actor_assertion_keys(foreign) == []


def test_load_public_key_pem_forms(instance_keys: InstanceKeys) -> None:
    pkcs1 = instance_keys.rsa_public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ).decode()
    assert isinstance(load_public_key_pem(pkcs1), rsa.RSAPublicKey)
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = p256.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert isinstance(load_public_key_pem(pem), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        "-----BEGIN PUBLIC KEY-----\n" + "A" * 20000 + "\n-----END PUBLIC KEY-----",
    ],
)
def test_unreadable_public_keys_are_refused(pem: str) -> None:
    with pytest.raises(KeyFormatError):
        load_public_key_pem(pem)


def test_secp384_and_huge_rsa_keys_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    huge = rsa.RSAPublicNumbers(65537, (1 << 9000) + 1).public_key()
    for key in (p384, huge):
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with pytest.raises(KeyFormatError):
            load_public_key_pem(pem)
