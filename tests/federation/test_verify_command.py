"""`holdfast verify URL-or-file`: exit status 0 valid, 1 invalid, 2 error."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from holdfast.cli.main import cli
from holdfast.federation.keys import InstanceKeys
from holdfast.federation.proofs import create_proof
from tests.federation.helpers import DATA, load_vector

SIGNED = DATA / "vc-di-eddsa-jcs-2022-signed.json"
W3C_DID = "did:key:" + load_vector("vc-di-eddsa-jcs-2022.json")["keyPair"]["publicKeyMultibase"]


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["verify", *args], input=stdin, env=env)


def test_valid_file() -> None:
    result = run(str(SIGNED))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid: $ urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33")
    assert f"signed by {W3C_DID} at 2023-02-24T23:36:38+00:00" in result.output


def test_tampered_file(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.json"
    tampered.write_text(SIGNED.read_text().replace("Alumni Credential", "Alumni Credentials", 1))
    result = run(str(tampered))
    assert result.exit_code == 1
    assert "invalid: $" in result.output and "invalid_signature" in result.output


def test_missing_proof(tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(load_vector("vc-di-eddsa-jcs-2022.json")["unsignedDocument"]))
    result = run(str(unsigned))
    assert result.exit_code == 1
    assert "missing" in result.output


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2, 3]", b'{"a": 1, "a": 2}', b"{" * 10 + b"}" * 10 + b"x" * (1024 * 1024)],
)
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = run(str(path))
    assert result.exit_code == 2
    assert "error:" in result.output


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert run(str(tmp_path / "nope.json")).exit_code == 2
    assert run(str(tmp_path)).exit_code == 2


def test_stdin_and_json_output() -> None:
    result = run("--json", "-", stdin=SIGNED.read_bytes())
    assert result.exit_code == 0
    payload = json.loads(result.output)
    assert payload["valid"] is True
    assert payload["proofs"][0]["signer"] == W3C_DID
    assert payload["proofs"][0]["verificationMethod"].startswith(W3C_DID + "#")


def test_expect_key() -> None:
    assert run("--expect-key", W3C_DID, str(SIGNED)).exit_code == 0
    assert run("--expect-key", W3C_DID.removeprefix("did:key:"), str(SIGNED)).exit_code == 0
    other = InstanceKeys.generate().did_key
    result = run("--expect-key", other, str(SIGNED))
    assert result.exit_code == 1
    assert "unexpected_signer" in result.output
    assert run("--expect-key", "did:key:zNope", str(SIGNED)).exit_code == 2


# --- over HTTP, from a real server on 127.0.0.1 -------------------------------------


def _create_activity(keys: InstanceKeys, *, tamper_object: bool = False) -> bytes:
    upload = create_proof(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "http://127.0.0.1/uploads/x",
            "type": ["Page", "holdfast:Upload"],
            "attributedTo": "http://127.0.0.1/actor",
            "name": "An upload",
        },
        keys.ed25519_private,
    )
    if tamper_object:
        upload["name"] = "Another upload"
    activity = create_proof(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "http://127.0.0.1/activities/1",
            "type": "Create",
            "actor": "http://127.0.0.1/actor",
            "object": upload,
        },
        keys.ed25519_private,
    )
    return json.dumps(activity).encode()


@pytest.fixture
def server(instance_keys: InstanceKeys) -> Iterator[tuple[str, list[str]]]:
    pages = {
        "/good": _create_activity(instance_keys),
        "/tampered-object": _create_activity(instance_keys, tamper_object=True),
    }
    accepts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            accepts.append(self.headers.get("Accept", ""))
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/activity+json")
            self.send_header("Content-Length", str(len(body or b"{}")))
            self.end_headers()
            self.wfile.write(body or b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", accepts
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_url_with_embedded_object(
    server: tuple[str, list[str]], instance_keys: InstanceKeys
) -> None:
    base, accepts = server
    result = run("--allow-private-addresses", "--json", base + "/good")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [proof["path"] for proof in payload["proofs"]] == ["$", "$.object"]
    assert {proof["signer"] for proof in payload["proofs"]} == {instance_keys.did_key}
    assert accepts[0].startswith("application/activity+json")


def test_url_with_tampered_embedded_object(server: tuple[str, list[str]]) -> None:
    base, _ = server
    result = run("--allow-private-addresses", base + "/tampered-object")
    # The activity was signed over the altered object, so its own proof holds; the
    # object's proof from its origin does not, and that is enough to fail.
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("valid: $ ")
    assert lines[1].startswith("invalid: $.object ") and "invalid_signature" in lines[1]


def test_private_url_is_refused_by_default(server: tuple[str, list[str]]) -> None:
    base, accepts = server
    result = run(base + "/good")
    assert result.exit_code == 2
    assert "non-public address" in result.output
    assert accepts == []
    by_env = run(base + "/good", env={"HOLDFAST_ALLOW_PRIVATE_ADDRESSES": "1"})
    assert by_env.exit_code == 0


def test_url_errors(server: tuple[str, list[str]]) -> None:
    base, _ = server
    assert run("--allow-private-addresses", base + "/missing").exit_code == 2
    assert run("--allow-private-addresses", "--timeout", "1", "http://127.0.0.1:9/").exit_code == 2


def test_installed_command_exit_status(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.json"
    tampered.write_text(SIGNED.read_text().replace("2023-02-24T23:36:38Z", "2023-02-24T23:36:39Z"))
    for path, status in ((SIGNED, 0), (tampered, 1), (tmp_path / "absent.json", 2)):
        completed = subprocess.run(
            [sys.executable, "-m", "holdfast", "verify", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == status, completed.stderr
