"""An instance's keys, and reading the keys of others.

Two keys per instance, each for the job the fediverse expects of it:

- **RSA-2048** signs HTTP requests (draft-cavage `rsa-sha256`, what Mastodon
  verifies). Its public half is published as the actor's `publicKey` block (PEM).
- **Ed25519** signs object proofs (FEP-8b32, `eddsa-jcs-2022`). Its public half is
  published as a `did:key` (multibase base58btc of the `ed25519-pub` multicodec,
  so it starts `z6Mk`) and as a `Multikey` in the actor's `assertionMethod`
  (FEP-521a). A did:key names its own key, so anyone can check a proof offline,
  even after the instance that made it is gone.

Private keys are stored as PKCS#8 PEM, optionally encrypted with a passphrase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from holdfast.federation.errors import KeyFormatError

RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
# Verifying with an enormous modulus is a cheap way to make us burn CPU.
MAX_RSA_BITS = 8192
MAX_PEM_CHARS = 16 * 1024
MAX_MULTIBASE_CHARS = 256

# Multicodec varint prefixes (https://github.com/multiformats/multicodec).
ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"

DID_KEY_PREFIX = "did:key:"

PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def base58btc_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58; leading zero bytes become leading '1's."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_CHARS:
        raise KeyFormatError(f"base58 value longer than {MAX_MULTIBASE_CHARS} characters")
    number = 0
    for char in text:
        index = _B58_INDEX.get(char)
        if index is None:
            raise KeyFormatError(f"not a base58btc character: {char!r}")
        number = number * 58 + index
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def multibase_encode(data: bytes) -> str:
    """Multibase with the base58btc code ('z')."""
    return "z" + base58btc_encode(data)


def multibase_decode(value: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise KeyFormatError("only base58btc multibase values (starting 'z') are supported")
    return base58btc_decode(value[1:])


def ed25519_public_multibase(key: ed25519.Ed25519PublicKey) -> str:
    """The `publicKeyMultibase` of an Ed25519 key: 'z6Mk...'."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return multibase_encode(ED25519_PUB_PREFIX + raw)


def ed25519_public_from_multibase(value: str) -> ed25519.Ed25519PublicKey:
    data = multibase_decode(value)
    if len(data) != 34 or not data.startswith(ED25519_PUB_PREFIX):
        raise KeyFormatError("not an ed25519-pub Multikey (multicodec 0xed01 + 32 bytes)")
    return ed25519.Ed25519PublicKey.from_public_bytes(data[2:])


def ed25519_secret_multibase(key: ed25519.Ed25519PrivateKey) -> str:
    """The `secretKeyMultibase` of an Ed25519 key (multicodec ed25519-priv + seed)."""
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return multibase_encode(ED25519_PRIV_PREFIX + seed)


def ed25519_private_from_multibase(value: str) -> ed25519.Ed25519PrivateKey:
    data = multibase_decode(value)
    if len(data) != 34 or not data.startswith(ED25519_PRIV_PREFIX):
        raise KeyFormatError("not an ed25519-priv multikey (multicodec 0x1300 + 32 bytes)")
    return ed25519.Ed25519PrivateKey.from_private_bytes(data[2:])


def did_key(key: ed25519.Ed25519PublicKey) -> str:
    """`did:key:z6Mk...` for an Ed25519 public key."""
    return DID_KEY_PREFIX + ed25519_public_multibase(key)


def did_key_verification_method(key: ed25519.Ed25519PublicKey) -> str:
    """The did:key URL of the key itself: `did:key:z6Mk...#z6Mk...`."""
    multibase = ed25519_public_multibase(key)
    return f"{DID_KEY_PREFIX}{multibase}#{multibase}"


def is_did_key(value: object) -> bool:
    return isinstance(value, str) and value.startswith(DID_KEY_PREFIX)


def ed25519_public_from_did_key(value: str) -> ed25519.Ed25519PublicKey:
    """Read `did:key:z6Mk...` or `did:key:z6Mk...#z6Mk...` (the fragment must repeat the key)."""
    if not is_did_key(value):
        raise KeyFormatError("not a did:key")
    identifier, hash_mark, fragment = value[len(DID_KEY_PREFIX) :].partition("#")
    if hash_mark and fragment != identifier:
        raise KeyFormatError("a did:key verification method's fragment must repeat its key")
    return ed25519_public_from_multibase(identifier)


def rsa_public_pem(key: rsa.RSAPublicKey) -> str:
    """SubjectPublicKeyInfo PEM ('BEGIN PUBLIC KEY'), the form Mastodon publishes and reads."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(pem: str) -> PublicKey:
    """Read a peer's public key from PEM: SPKI (RSA, Ed25519, EC) or PKCS#1 RSA."""
    if not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS:
        raise KeyFormatError("public key PEM missing or too long")
    data = pem.strip().encode("ascii", errors="replace")
    try:
        # Reads SPKI and, for peers that publish it, PKCS#1 "RSA PUBLIC KEY".
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable public key PEM: {exc}") from exc
    return _checked_public_key(key)


def _checked_public_key(key: object) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size > MAX_RSA_BITS:
            raise KeyFormatError(f"RSA key of {key.key_size} bits exceeds {MAX_RSA_BITS}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise KeyFormatError(f"unsupported public key type {type(key).__name__}")


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """A public key, who owns it, and the id it was published under.

    `owner` is the actor the key speaks for; the verifier hands it back so the
    caller can check it against the activity's `actor`.
    """

    key_id: str
    owner: str
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class InstanceKeys:
    """The two private keys of an instance."""

    rsa_private: rsa.RSAPrivateKey
    ed25519_private: ed25519.Ed25519PrivateKey

    def __post_init__(self) -> None:
        if not isinstance(self.rsa_private, rsa.RSAPrivateKey):
            raise KeyFormatError("the HTTP signature key must be RSA")
        if not RSA_KEY_BITS <= self.rsa_private.key_size <= MAX_RSA_BITS:
            raise KeyFormatError(f"RSA key must have {RSA_KEY_BITS} to {MAX_RSA_BITS} bits")
        if not isinstance(self.ed25519_private, ed25519.Ed25519PrivateKey):
            raise KeyFormatError("the proof key must be Ed25519")

    @classmethod
    def generate(cls) -> InstanceKeys:
        return cls(
            rsa_private=rsa.generate_private_key(
                public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS
            ),
            ed25519_private=ed25519.Ed25519PrivateKey.generate(),
        )

    @property
    def rsa_public(self) -> rsa.RSAPublicKey:
        return self.rsa_private.public_key()

    @property
    def ed25519_public(self) -> ed25519.Ed25519PublicKey:
        return self.ed25519_private.public_key()

    @property
    def rsa_public_pem(self) -> str:
        return rsa_public_pem(self.rsa_public)

    @property
    def did_key(self) -> str:
        return did_key(self.ed25519_public)

    @property
    def verification_method(self) -> str:
        """The did:key URL that goes in every proof's `verificationMethod`."""
        return did_key_verification_method(self.ed25519_public)

    @property
    def public_key_multibase(self) -> str:
        return ed25519_public_multibase(self.ed25519_public)

    def to_storage(self, passphrase: bytes | None = None) -> dict[str, str]:
        """Both private keys as PKCS#8 PEM text, encrypted when a passphrase is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )

        def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
            return key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            ).decode("ascii")

        return {
            "rsa_private_pem": pem(self.rsa_private),
            "ed25519_private_pem": pem(self.ed25519_private),
        }

    @classmethod
    def from_storage(
        cls, stored: Mapping[str, str], passphrase: bytes | None = None
    ) -> InstanceKeys:
        rsa_key = _load_private_pem(stored.get("rsa_private_pem"), passphrase)
        ed_key = _load_private_pem(stored.get("ed25519_private_pem"), passphrase)
        if not isinstance(rsa_key, rsa.RSAPrivateKey):
            raise KeyFormatError("rsa_private_pem does not hold an RSA key")
        if not isinstance(ed_key, ed25519.Ed25519PrivateKey):
            raise KeyFormatError("ed25519_private_pem does not hold an Ed25519 key")
        return cls(rsa_private=rsa_key, ed25519_private=ed_key)


def _load_private_pem(pem: str | None, passphrase: bytes | None) -> object:
    if not isinstance(pem, str) or not pem or len(pem) > MAX_PEM_CHARS:
        raise KeyFormatError("private key PEM missing or too long")
    try:
        return serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unreadable private key PEM: {exc}") from exc


def public_key_block(actor_id: str, key: rsa.RSAPublicKey) -> dict[str, str]:
    """The actor's `publicKey` block, as Mastodon publishes and expects it."""
    return {"id": f"{actor_id}#main-key", "owner": actor_id, "publicKeyPem": rsa_public_pem(key)}


def multikey_block(actor_id: str, key: ed25519.Ed25519PublicKey) -> dict[str, str]:
    """A FEP-521a `Multikey` for the actor's `assertionMethod`."""
    return {
        "id": f"{actor_id}#ed25519-key",
        "type": "Multikey",
        "controller": actor_id,
        "publicKeyMultibase": ed25519_public_multibase(key),
    }


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _id_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def public_key_from_actor(actor: Mapping[str, Any], key_id: str) -> ResolvedKey | None:
    """Find `key_id` among an actor document's keys and check it belongs to that actor.

    Looks in `publicKey` (PEM; the key's `owner` must be the actor) and in
    `assertionMethod` (FEP-521a Multikey; its `controller` must be the actor).
    Returns None when the actor does not publish that key.
    """
    actor_id = actor.get("id")
    if not isinstance(actor_id, str):
        return None
    for block in _as_list(actor.get("publicKey"))[:16]:
        if not isinstance(block, Mapping) or block.get("id") != key_id:
            continue
        if _id_of(block.get("owner")) != actor_id:
            continue
        pem = block.get("publicKeyPem")
        if isinstance(pem, str):
            return ResolvedKey(key_id=key_id, owner=actor_id, public_key=load_public_key_pem(pem))
    for method in _as_list(actor.get("assertionMethod"))[:16]:
        if not isinstance(method, Mapping) or method.get("id") != key_id:
            continue
        if method.get("type") != "Multikey" or _id_of(method.get("controller")) != actor_id:
            continue
        multibase = method.get("publicKeyMultibase")
        if isinstance(multibase, str):
            return ResolvedKey(
                key_id=key_id,
                owner=actor_id,
                public_key=ed25519_public_from_multibase(multibase),
            )
    return None


def actor_assertion_keys(actor: Mapping[str, Any]) -> list[str]:
    """The `publicKeyMultibase` values of the Ed25519 Multikeys an actor controls."""
    actor_id = actor.get("id")
    found: list[str] = []
    for method in _as_list(actor.get("assertionMethod"))[:16]:
        if not isinstance(method, Mapping) or method.get("type") != "Multikey":
            continue
        if _id_of(method.get("controller")) != actor_id:
            continue
        multibase = method.get("publicKeyMultibase")
        if isinstance(multibase, str) and multibase.startswith("z6Mk"):
            found.append(multibase)
    return found
