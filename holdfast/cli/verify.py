"""`holdfast verify`: check an object's FEP-8b32 proof against its did:key.

Anyone can check that a dataset, upload or activity is exactly what its origin
published, from a URL or from a saved file, even when the origin is gone.
Exit status: 0 every proof verified, 1 a proof is missing or invalid, 2 the
object could not be read.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from holdfast.federation.errors import FederationError, ProofRejected
from holdfast.federation.fetch import MAX_FETCH_BYTES, fetch
from holdfast.federation.keys import ed25519_public_from_did_key, ed25519_public_multibase
from holdfast.federation.netguard import guarded_client
from holdfast.federation.proofs import VerifiedProof, verify_proof
from holdfast.federation.strictjson import loads_strict

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


class _Unreadable(Exception):
    """The target could not be read as a JSON object."""


def _read_target(target: str, *, allow_private: bool, timeout: float) -> bytes:
    if target.startswith(("http://", "https://")):
        return asyncio.run(_fetch(target, allow_private=allow_private, timeout=timeout))
    try:
        if target == "-":
            data = sys.stdin.buffer.read(MAX_FETCH_BYTES + 1)
        else:
            path = Path(target)
            if not path.is_file():
                raise _Unreadable(f"{target}: no such file (or not a URL)")
            with path.open("rb") as handle:
                data = handle.read(MAX_FETCH_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(f"{target}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FETCH_BYTES:
        raise _Unreadable(f"{target}: larger than {MAX_FETCH_BYTES} bytes")
    return data


async def _fetch(url: str, *, allow_private: bool, timeout: float) -> bytes:
    async with guarded_client(allow_private=allow_private, timeout=timeout) as client:
        fetched = await fetch(client, url)
    return fetched.body


def _expected_multibase(value: str | None) -> str | None:
    if value is None:
        return None
    if value.startswith("did:key:"):
        return ed25519_public_multibase(ed25519_public_from_did_key(value))
    return value


def _check(document: dict[str, Any], path: str, expected: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "path": path,
        "id": document.get("id"),
        "type": document.get("type"),
    }
    try:
        verified: VerifiedProof = verify_proof(document)
    except ProofRejected as exc:
        result.update(valid=False, reason=exc.reason.value, detail=exc.detail)
        return result
    signer = f"did:key:{verified.public_key_multibase}"
    result.update(
        valid=True,
        verificationMethod=verified.verification_method,
        signer=signer,
        created=verified.created.isoformat() if verified.created else None,
    )
    if expected is not None and verified.public_key_multibase != expected:
        result.update(valid=False, reason="unexpected_signer", detail=f"signed by {signer}")
    return result


def _describe(result: dict[str, Any]) -> str:
    kind = result["type"]
    kind = "/".join(kind) if isinstance(kind, list) else kind
    what = f"{result['path']} {result['id'] or '(no id)'} ({kind or 'untyped'})"
    if result["valid"]:
        created = f" at {result['created']}" if result["created"] else ""
        return f"valid: {what} signed by {result['signer']}{created}"
    return f"invalid: {what}: {result['reason']}: {result['detail']}"


@click.command("verify")
@click.argument("target")
@click.option(
    "--expect-key",
    metavar="DID_KEY",
    help="Also require the proofs to be made by this did:key (or z6Mk... multibase key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--allow-private-addresses",
    is_flag=True,
    envvar="HOLDFAST_ALLOW_PRIVATE_ADDRESSES",
    help="Allow fetching from private and loopback addresses (local testing only).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=20.0,
    show_default=True,
    help="Seconds to wait for a URL.",
)
def verify(
    target: str,
    expect_key: str | None,
    as_json: bool,
    allow_private_addresses: bool,
    timeout: float,
) -> None:
    """Check the FEP-8b32 (eddsa-jcs-2022) proof of an object or activity.

    TARGET is a URL (fetched with Accept: application/activity+json), a file, or
    '-' for standard input. An embedded object that carries its own proof is
    checked too. Exit status: 0 valid, 1 missing or invalid proof, 2 error.
    """
    try:
        expected = _expected_multibase(expect_key)
        raw = _read_target(target, allow_private=allow_private_addresses, timeout=timeout)
        document = loads_strict(raw)
        if not isinstance(document, dict):
            raise _Unreadable("not a JSON object")
    except (_Unreadable, FederationError) as exc:
        # FetchError, UnsafeAddressError, KeyFormatError and unreadable JSON all land here.
        _finish({"valid": False, "error": str(exc)}, as_json, EXIT_ERROR, f"error: {exc}")
        return

    results = [_check(document, "$", expected)]
    embedded = document.get("object")
    if isinstance(embedded, dict) and "proof" in embedded:
        results.append(_check(embedded, "$.object", expected))
    valid = all(result["valid"] for result in results)
    lines = "\n".join(_describe(result) for result in results)
    _finish(
        {"valid": valid, "proofs": results}, as_json, EXIT_VALID if valid else EXIT_INVALID, lines
    )


def _finish(payload: dict[str, Any], as_json: bool, status: int, text: str) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(text, err=status == EXIT_ERROR)
    raise SystemExit(status)
