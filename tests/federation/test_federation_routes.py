"""The ActivityPub routes of one instance: discovery, collections, objects, and every
refusal of the inbox (size, signature, digest, date, unknown key, signer, policy)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.federation.documents import InstanceIdentity, instance_actor
from holdfast.federation.httpsig import sign_request
from holdfast.federation.keys import InstanceKeys
from holdfast.federation.models import Follow, OutboxItem, Peer
from holdfast.federation.proofs import verify_proof
from holdfast.federation.rfc9421 import sign_request_rfc9421
from holdfast.moderation.models import Report
from tests.instance.helpers import make_dataset, make_upload, make_user, set_status

BASE = "http://127.0.0.1:8000"
INBOX = f"{BASE}/actor/inbox"
AS = {"Accept": "application/activity+json"}
REMOTE = "http://remote.example"


@pytest.fixture
def remote(instance: Any, other_keys: InstanceKeys) -> dict[str, Any]:
    """A peer's actor, known to the instance (cached as if fetched just now)."""
    identity = InstanceIdentity(base_url=REMOTE, name="remote", title="Remote")
    actor = instance_actor(
        identity, rsa_public=other_keys.rsa_public, ed25519_public=other_keys.ed25519_public
    )
    fed = instance.services["federation"]
    fed.store_actor(actor, json.dumps(actor))
    return {"identity": identity, "actor": actor, "keys": other_keys, "fed": fed}


def signed_post(
    client: TestClient,
    remote: dict[str, Any],
    activity: dict[str, Any] | bytes,
    *,
    url: str = INBOX,
    now: datetime | None = None,
    key_id: str | None = None,
    tamper: bytes | None = None,
    keys: InstanceKeys | None = None,
) -> Any:
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = sign_request(
        "POST",
        url,
        private_key=(keys or remote["keys"]).rsa_private,
        key_id=key_id or remote["identity"].key_id,
        body=body,
        now=now,
    )
    headers["Content-Type"] = "application/activity+json"
    return client.post(url.removeprefix(BASE), content=tamper or body, headers=headers)


def follow_activity(actor: str = f"{REMOTE}/actor") -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{REMOTE}/follows/{datetime.now(UTC).timestamp()}",
        "type": "Follow",
        "actor": actor,
        "object": f"{BASE}/actor",
    }


# ------------------------------------------------------------------ discovery


def test_actor_webfinger_and_nodeinfo(client: TestClient, instance: Any) -> None:
    actor = client.get("/actor")
    assert actor.status_code == 200
    assert actor.headers["content-type"].startswith("application/activity+json")
    document = actor.json()
    assert document["type"] == "Service"
    assert document["preferredUsername"] == instance.settings.instance_name
    assert document["inbox"] == INBOX and document["outbox"] == f"{BASE}/actor/outbox"
    assert document["assertionMethod"][0]["publicKeyMultibase"].startswith("z6Mk")
    assert "BEGIN PUBLIC KEY" in document["publicKey"]["publicKeyPem"]

    finger = client.get(
        "/.well-known/webfinger",
        params={"resource": f"acct:{instance.settings.instance_name}@127.0.0.1:8000"},
    )
    assert finger.status_code == 200
    assert {"rel": "self", "type": "application/activity+json", "href": f"{BASE}/actor"} in (
        finger.json()["links"]
    )
    assert (
        client.get("/.well-known/webfinger", params={"resource": "acct:nobody@x.org"}).status_code
        == 404
    )
    assert client.get("/.well-known/webfinger").status_code == 400

    links = client.get("/.well-known/nodeinfo").json()["links"]
    assert links[0]["href"] == f"{BASE}/nodeinfo/2.1"
    info = client.get("/nodeinfo/2.1").json()
    assert info["version"] == "2.1" and info["protocols"] == ["activitypub"]
    assert info["metadata"]["federation"] == {"mode": "open", "autoAcceptFollows": True}


# --------------------------------------------------------- outbox and objects


def test_outbox_pages_oldest_first_and_objects(
    client: TestClient, instance: Any, tmp_path: Any
) -> None:
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner, title="Ice cores", description="Deep ice")
    uploads = [make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(3)]
    fed = instance.services["federation"]
    fed.outbox_page_size = 2

    collection = client.get("/actor/outbox").json()
    assert collection["type"] == "OrderedCollection" and collection["totalItems"] == 4
    seen: list[dict[str, Any]] = []
    url = collection["last"]
    for _ in range(10):
        page = client.get(url.removeprefix(BASE)).json()
        if not page["orderedItems"]:
            break
        seen.extend(page["orderedItems"])
        url = page["next"]
    assert [a["type"] for a in seen] == ["Create"] * 4
    assert seen[0]["object"]["type"] == ["Page", "holdfast:Dataset"]
    assert [a["object"]["infohashV2"] for a in seen[1:]] == [u.infohash_v2 for u in uploads]
    for activity in seen:
        verify_proof(activity)
        verify_proof(activity["object"])
    newest = client.get("/actor/outbox?before=").json()["orderedItems"]
    assert newest[0]["id"] == seen[-1]["id"]

    page = client.get(f"/datasets/{dataset.slug}", headers=AS)
    assert page.status_code == 200 and page.headers["content-type"].startswith(
        "application/activity+json"
    )
    assert page.json()["prov:specializationOf"] == f"{BASE}/datasets/{dataset.slug}"
    assert page.json()["description"] == "Deep ice"
    version = client.get(page.json()["id"].removeprefix(BASE), headers=AS)
    assert version.status_code == 200
    html = client.get(f"/datasets/{dataset.slug}", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    obj = client.get(f"/uploads/{uploads[0].infohash}", headers=AS).json()
    assert obj["id"] == f"{BASE}/uploads/{uploads[0].infohash}"
    assert obj["torrent"] == f"{BASE}/api/v1/uploads/{uploads[0].infohash}/torrent"
    assert client.get(seen[0]["id"].removeprefix(BASE)).json()["id"] == seen[0]["id"]

    # An edit is an Update of a new version that names its parent.
    from holdfast.catalogue.schemas import DatasetEdit

    instance.catalogue.edit_dataset(owner.account, dataset.slug, DatasetEdit(title="Ice cores 2"))
    update = client.get("/actor/outbox?before=").json()["orderedItems"][0]
    assert update["type"] == "Update"
    assert update["object"]["prov:wasRevisionOf"] == seen[0]["object"]["id"]

    # Removal: a Delete, then a Tombstone with 410.
    set_status(instance, Upload, uploads[0].id, Status.removed)
    delete = client.get("/actor/outbox?before=").json()["orderedItems"][0]
    assert delete["type"] == "Delete" and delete["object"]["id"] == obj["id"]
    gone = client.get(f"/uploads/{uploads[0].infohash}", headers=AS)
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    assert client.get(f"/uploads/{uploads[1].infohash}", headers=AS).status_code == 200


def test_pending_items_are_not_published(client: TestClient, instance: Any, tmp_path: Any) -> None:
    owner = make_user(instance, "owner", Role.member)
    dataset = make_dataset(instance, owner, status=Status.pending)
    assert client.get(f"/datasets/{dataset.slug}", headers=AS).status_code == 404
    with instance.db.read() as s:
        assert s.query(OutboxItem).count() == 0


# ------------------------------------------------------------------ the inbox


def test_signed_follow_is_accepted(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    response = signed_post(client, remote, follow_activity())
    assert response.status_code == 202, response.text
    with instance.db.read() as s:
        follow = s.query(Follow).one()
        assert follow.state == "accepted" and follow.direction == "inbound"
        accept = s.query(OutboxItem).filter_by(type="Accept").one()
        assert accept.public is False
    followers = client.get("/actor/followers").json()
    assert followers["orderedItems"] == [f"{REMOTE}/actor"]
    # The same activity again changes nothing.
    assert (
        signed_post(client, remote, follow_activity() | {"id": follow.activity_id}).status_code
        == 202
    )


def test_rfc9421_signature_is_accepted(client: TestClient, remote: dict[str, Any]) -> None:
    body = json.dumps(follow_activity()).encode()
    headers = sign_request_rfc9421(
        "POST",
        INBOX,
        private_key=remote["keys"].rsa_private,
        key_id=remote["identity"].key_id,
        body=body,
    )
    headers["Content-Type"] = "application/activity+json"
    response = client.post("/actor/inbox", content=body, headers=headers)
    assert response.status_code == 202, response.text


def test_unsigned_post_is_refused(client: TestClient, instance: Any) -> None:
    response = client.post("/actor/inbox", json=follow_activity())
    assert response.status_code == 401
    assert response.json()["reason"] == "unsigned"
    with instance.db.read() as s:
        assert s.query(Follow).count() == 0


def test_oversized_body_is_refused(client: TestClient, remote: dict[str, Any]) -> None:
    big = follow_activity() | {"padding": "x" * (1024 * 1024 + 1)}
    assert signed_post(client, remote, big).status_code == 413
    assert client.post("/inbox", content=b"x" * (1024 * 1024 + 10)).status_code == 413


def test_digest_mismatch_is_refused(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    activity = follow_activity()
    other = json.dumps(activity | {"object": f"{BASE}/somebody"}).encode()
    response = signed_post(client, remote, activity, tamper=other)
    assert response.status_code == 401 and response.json()["reason"] == "digest_mismatch"
    with instance.db.read() as s:
        assert s.query(Follow).count() == 0


def test_stale_date_is_refused(client: TestClient, remote: dict[str, Any]) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    response = signed_post(client, remote, follow_activity(), now=old)
    assert response.status_code == 401 and response.json()["reason"] == "stale"


def test_unknown_key_is_refused_after_one_refetch(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    # The actor is cached but does not publish this key; re-fetching it fails.
    response = signed_post(client, remote, follow_activity(), key_id=f"{REMOTE}/actor#other-key")
    assert response.status_code == 401 and response.json()["reason"] == "unknown_key"


def test_wrong_key_is_refused(
    client: TestClient, remote: dict[str, Any], instance_keys: InstanceKeys
) -> None:
    response = signed_post(client, remote, follow_activity(), keys=instance_keys)
    assert response.status_code == 401 and response.json()["reason"] == "bad_signature"


def test_signer_who_is_not_the_actor_is_refused(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    response = signed_post(client, remote, follow_activity(actor="http://else.example/actor"))
    assert response.status_code == 401 and response.json()["reason"] == "signer_not_actor"
    with instance.db.read() as s:
        assert s.query(Follow).count() == 0


def test_malformed_json_is_refused(client: TestClient, remote: dict[str, Any]) -> None:
    assert signed_post(client, remote, b'{"type": "Follow", "type": "Like"}').status_code == 400


def test_blocked_peer_is_refused_and_loses_its_follow(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    assert signed_post(client, remote, follow_activity()).status_code == 202
    admin = make_user(instance, "root", Role.admin)
    blocked = client.post(
        "/api/v1/federation/peers",
        json={"actor": f"{REMOTE}/actor", "blocked": True},
        headers=admin.headers,
    )
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    with instance.db.read() as s:
        assert s.query(Follow).count() == 0
    response = signed_post(client, remote, follow_activity())
    assert response.status_code == 403
    assert client.get("/actor/followers").json()["orderedItems"] == []
    policy = client.get("/api/v1/federation/policy", headers=admin.headers).json()
    assert policy["blocked"] == ["remote.example"]
    # A signed fetch by the blocked peer gets nothing either.
    headers = sign_request(
        "GET",
        f"{BASE}/actor/outbox",
        private_key=remote["keys"].rsa_private,
        key_id=remote["identity"].key_id,
    )
    assert client.get("/actor/outbox", headers=headers).status_code == 403


def test_allowlist_refuses_peers_not_allowed(make_settings: Any, other_keys: InstanceKeys) -> None:
    from holdfast.app import create_app

    app = create_app(make_settings(federation_mode="allowlist"))
    with TestClient(app, base_url=BASE) as client:
        instance = app.state.instance
        identity = InstanceIdentity(base_url=REMOTE, name="remote", title="Remote")
        actor = instance_actor(
            identity, rsa_public=other_keys.rsa_public, ed25519_public=other_keys.ed25519_public
        )
        fed = instance.services["federation"]
        fed.store_actor(actor, json.dumps(actor))
        remote = {"identity": identity, "keys": other_keys}
        assert signed_post(client, remote, follow_activity()).status_code in (401, 403)
        fed.set_peer(f"{REMOTE}/actor", allowed=True)
        assert signed_post(client, remote, follow_activity()).status_code == 202
        assert client.get("/nodeinfo/2.1").json()["metadata"]["federation"]["mode"] == "allowlist"


def test_review_queue_for_follows(make_settings: Any, other_keys: InstanceKeys) -> None:
    from holdfast.app import create_app

    app = create_app(make_settings(federation_auto_accept=False))
    with TestClient(app, base_url=BASE) as client:
        instance = app.state.instance
        identity = InstanceIdentity(base_url=REMOTE, name="remote", title="Remote")
        actor = instance_actor(
            identity, rsa_public=other_keys.rsa_public, ed25519_public=other_keys.ed25519_public
        )
        instance.services["federation"].store_actor(actor, json.dumps(actor))
        assert (
            signed_post(
                client, {"identity": identity, "keys": other_keys}, follow_activity()
            ).status_code
            == 202
        )
        admin = make_user(instance, "root", Role.admin)
        follows = client.get("/api/v1/federation/follows", headers=admin.headers).json()
        assert [f["state"] for f in follows] == ["pending"]
        member = make_user(instance, "someone", Role.member)
        assert client.get("/api/v1/federation/follows", headers=member.headers).status_code == 403
        assert client.get("/api/v1/federation/follows").status_code == 401
        decided = client.post(
            f"/api/v1/federation/follows/{follows[0]['id']}",
            json={"action": "accept"},
            headers=admin.headers,
        )
        assert decided.status_code == 200 and decided.json()["state"] == "accepted"
        again = client.post(
            f"/api/v1/federation/follows/{follows[0]['id']}",
            json={"action": "accept"},
            headers=admin.headers,
        )
        assert again.status_code == 422


def test_flag_becomes_a_report(
    client: TestClient, instance: Any, remote: dict[str, Any], tmp_path: Any
) -> None:
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    flag = {
        "id": f"{REMOTE}/flags/1",
        "type": "Flag",
        "actor": f"{REMOTE}/actor",
        "object": [f"{BASE}/uploads/{upload.infohash}"],
        "content": "wrong files",
    }
    assert signed_post(client, remote, flag).status_code == 202
    with instance.db.read() as s:
        report = s.query(Report).one()
        assert (report.target_type, report.target_id) == ("upload", upload.id)
        assert "wrong files" in report.reason and REMOTE in report.reason


def test_create_without_a_valid_proof_is_refused(
    client: TestClient, instance: Any, remote: dict[str, Any]
) -> None:
    obj = {
        "id": f"{REMOTE}/uploads/{'a' * 64}",
        "type": ["Page", "holdfast:Upload"],
        "attributedTo": f"{REMOTE}/actor",
        "infohashV2": "a" * 64,
        "dataset": f"{REMOTE}/datasets/x",
    }
    create = {"id": f"{REMOTE}/c/1", "type": "Create", "actor": f"{REMOTE}/actor", "object": obj}
    response = signed_post(client, remote, create)
    assert response.status_code == 401 and "proof" in response.json()["error"]
    # Signed by a key the actor does not list: refused as well.
    from holdfast.federation.proofs import create_proof

    forged = create_proof(obj, InstanceKeys.generate().ed25519_private)
    response = signed_post(client, remote, create | {"id": f"{REMOTE}/c/2", "object": forged})
    assert response.status_code == 401
    with instance.db.read() as s:
        assert s.query(Upload).count() == 0
        assert s.query(Peer).filter_by(actor_id=f"{REMOTE}/actor").one().did_key == (
            remote["keys"].public_key_multibase
        )


def test_proof_check_endpoint(client: TestClient, instance: Any, tmp_path: Any) -> None:
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner)
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    document = client.get(f"/uploads/{upload.infohash}", headers=AS).json()
    checked = client.post("/api/v1/federation/verify", json={"document": document}).json()
    assert checked["valid"] is True and checked["owner_lists_key"] is True
    document["name"] = "tampered"
    checked = client.post("/api/v1/federation/verify", json={"document": document}).json()
    assert checked["valid"] is False and checked["reason"] == "invalid_signature"
    assert client.post("/api/v1/federation/verify", json={}).status_code == 422


def outbox_objects(client: TestClient) -> list[tuple[str, str]]:
    items = client.get("/actor/outbox?after=0").json()["orderedItems"]
    return [(a["type"], a["object"]["id"]) for a in items]


def bundle(client: TestClient) -> dict[bytes, bytes]:
    from holdfast.torrents import bencode

    response = client.get("/actor/outbox/torrents?after=0")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-holdfast-torrents"
    decoded: dict[bytes, bytes] = bencode.decode(response.content)
    return decoded


def test_outbox_lists_an_item_only_while_it_is_public(
    client: TestClient, instance: Any, tmp_path: Any
) -> None:
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner, title="Ice cores")
    kept, hidden = (make_upload(instance, owner, dataset.slug, tmp_path) for _ in range(2))
    before = outbox_objects(client)
    assert [t for t, _ in before] == ["Create"] * 3
    link = client.get("/actor/outbox?after=0").json()["holdfast:torrents"]
    assert link == f"{BASE}/actor/outbox/torrents?after=0"
    files = bundle(client)
    assert len(files) == 2 and all(data.startswith(b"d") for data in files.values())

    # Sent back to review: its Create leaves the outbox and its .torrent the bundle.
    set_status(instance, Upload, hidden.id, Status.pending)
    assert outbox_objects(client) == [before[0], before[1]]
    assert list(bundle(client)) == [k for k in files if kept.infohash.encode() in k]
    # Approved again: listed again, where it was.
    set_status(instance, Upload, hidden.id, Status.approved)
    assert outbox_objects(client) == before
    # Its dataset sent back to review: the dataset's and both uploads' Creates leave.
    set_status(instance, Dataset, dataset.id, Status.pending)
    assert outbox_objects(client) == [] and bundle(client) == {}
    set_status(instance, Dataset, dataset.id, Status.approved)
    assert outbox_objects(client) == before
    # Removed: its Create leaves for good, and a Delete says so.
    set_status(instance, Upload, hidden.id, Status.removed)
    after = client.get("/actor/outbox?after=0").json()["orderedItems"]
    assert [(a["type"], a["object"]["id"]) for a in after[:2]] == [before[0], before[1]]
    assert [a["type"] for a in after[2:]] == ["Delete"]


@pytest.mark.parametrize("after", ["-1", "x", str(2**63)])
def test_outbox_torrents_refuses_a_bad_position(client: TestClient, after: str) -> None:
    assert client.get(f"/actor/outbox/torrents?after={after}").status_code == 422
    assert client.get("/actor/outbox/torrents").status_code == 422
