"""The inbox answers 202 once an activity is checked and stored as a job; every
refusal stays in the request: a forged or missing proof (401), on a Create as on a
relayed Announce, and a peer not federated with (403)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from holdfast.federation.documents import InstanceIdentity, instance_actor
from holdfast.federation.httpsig import sign_request
from holdfast.federation.keys import InstanceKeys
from holdfast.federation.proofs import create_proof
from holdfast.jobs.models import Job

BASE = "http://127.0.0.1:8000"
INBOX = f"{BASE}/actor/inbox"
REMOTE = "http://remote.example"


@pytest.fixture
def remote(instance: Any, other_keys: InstanceKeys) -> dict[str, Any]:
    identity = InstanceIdentity(base_url=REMOTE, name="remote", title="Remote")
    actor = instance_actor(
        identity, rsa_public=other_keys.rsa_public, ed25519_public=other_keys.ed25519_public
    )
    fed = instance.services["federation"]
    fed.store_actor(actor, json.dumps(actor))
    return {"identity": identity, "keys": other_keys, "fed": fed}


def post(client: TestClient, remote: dict[str, Any], activity: dict[str, Any]) -> Any:
    body = json.dumps(activity).encode()
    headers = sign_request(
        "POST",
        INBOX,
        private_key=remote["keys"].rsa_private,
        key_id=remote["identity"].key_id,
        body=body,
    )
    headers["Content-Type"] = "application/activity+json"
    return client.post("/actor/inbox", content=body, headers=headers)


def upload_object(keys: InstanceKeys | None, owner: str = f"{REMOTE}/actor") -> dict[str, Any]:
    base = owner.removesuffix("/actor")
    obj = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{base}/uploads/{'b' * 64}",
        "type": ["Page", "holdfast:Upload"],
        "attributedTo": owner,
        "infohashV2": "b" * 64,
        "dataset": f"{base}/datasets/x",
    }
    return create_proof(obj, keys.ed25519_private) if keys else obj


def receive_jobs(instance: Any) -> list[dict[str, Any]]:
    with instance.db.read() as s:
        return [j.payload for j in s.scalars(select(Job).where(Job.kind == "federation.receive"))]


def test_a_checked_create_is_stored_as_one_job(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    create = {
        "id": f"{REMOTE}/c/1",
        "type": "Create",
        "actor": f"{REMOTE}/actor",
        "object": upload_object(remote["keys"]),
    }
    first = post(client, remote, create)
    assert first.status_code == 202 and first.json() == {"ok": True, "result": "queued"}
    assert post(client, remote, create).status_code == 202  # delivered twice
    jobs = receive_jobs(instance)
    assert len(jobs) == 1 and jobs[0]["sender"] == f"{REMOTE}/actor"
    assert json.loads(jobs[0]["body"]) == create  # kept exactly as received


def test_refusals_stay_in_the_request(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    actor = f"{REMOTE}/actor"
    forged = upload_object(InstanceKeys.generate())
    for n, obj in enumerate([upload_object(None), forged]):
        create = {"id": f"{REMOTE}/c/{n}", "type": "Create", "actor": actor, "object": obj}
        response = post(client, remote, create)
        assert response.status_code == 401, response.text
    # A relayed object: its proof must be by its own origin's key.
    origin = "http://origin.example/actor"
    origin_keys = InstanceKeys.generate()
    identity = InstanceIdentity(base_url="http://origin.example", name="o", title="O")
    remote["fed"].store_actor(
        instance_actor(
            identity, rsa_public=origin_keys.rsa_public, ed25519_public=origin_keys.ed25519_public
        ),
        "{}",
    )
    relayed = upload_object(InstanceKeys.generate(), owner=origin)
    announce = {"id": f"{REMOTE}/a/1", "type": "Announce", "actor": actor, "object": relayed}
    assert post(client, remote, announce).status_code == 401
    nameless = {"id": f"{REMOTE}/d/1", "type": "Delete", "actor": actor}
    assert post(client, remote, nameless).status_code == 400
    remote["fed"].set_peer(origin, blocked=True)
    blocked = upload_object(origin_keys, owner=origin)
    announce = {"id": f"{REMOTE}/a/2", "type": "Announce", "actor": actor, "object": blocked}
    assert post(client, remote, announce).status_code == 403
    assert receive_jobs(instance) == []
