"""Replication between real instances on 127.0.0.1 (uvicorn in threads, each with its
own data folder and database, jobs running): backfill over several outbox pages, live
create / edit / delete, dedup by infohash, forks, blocks and allowlists, and the
catalogue of a stopped instance obtained from a peer with every proof intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.catalogue.schemas import DatasetEdit, UploadIn
from holdfast.federation.models import FedObject
from holdfast.federation.proofs import create_proof, verify_proof
from tests.federation.interop import ops
from tests.federation.interop.instances import InstanceThread, wait_until
from tests.instance.helpers import make_dataset, make_upload, make_user, set_status
from tests.instance.torrents import sample_torrent

pytestmark = pytest.mark.slow
TIMEOUT = 60.0


def uploads_of(node: InstanceThread, *, status: str = "approved") -> set[str]:
    with node.instance.db.read() as s:
        return {u.infohash for u in s.query(Upload).filter(Upload.status == status)}


def dataset_titles(node: InstanceThread) -> set[str]:
    with node.instance.db.read() as s:
        return {d.title for d in s.query(Dataset).filter(Dataset.status == "approved")}


def admin_headers(node: InstanceThread) -> dict[str, str]:
    return make_user(node.instance, "root", Role.admin).headers


def follow(node: InstanceThread, headers: dict[str, str], actor: str) -> httpx.Response:
    return httpx.post(
        f"{node.base_url}/api/v1/federation/follows",
        json={"actor": actor},
        headers=headers,
        timeout=30,
    )


def test_backfill_live_changes_and_a_stopped_origin(make_settings: Any, tmp_path: Path) -> None:
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta") as b,
    ):
        a.app.state.federation.outbox_page_size = 2
        owner = make_user(a.instance, "owner", Role.uploader)
        dataset = make_dataset(a.instance, owner, title="Glaciers", description="Ice")
        published = {
            make_upload(a.instance, owner, dataset.slug, tmp_path).infohash for _ in range(5)
        }
        outbox_items = httpx.get(f"{a.base_url}/actor/outbox").json()["totalItems"]
        assert outbox_items == 6  # three pages or more at two per page

        b_admin = admin_headers(b)
        response = follow(b, b_admin, a.actor_url)
        assert response.status_code == 202, response.text
        wait_until(lambda: uploads_of(b) == published, timeout=TIMEOUT, what="backfill")

        def synced() -> bool:
            peers = httpx.get(f"{b.base_url}/api/v1/federation/peers", headers=b_admin).json()
            return any(p["actor"] == a.actor_url and p["synced_at"] for p in peers)

        wait_until(synced, timeout=TIMEOUT, what="the end of the outbox")
        peers = httpx.get(f"{b.base_url}/api/v1/federation/peers", headers=b_admin).json()
        assert [p["cursor"] for p in peers if p["actor"] == a.actor_url] == [6]
        # The mirrored upload is a catalogue row with its provenance, its .torrent served here.
        some = sorted(published)[0]
        provenance = httpx.get(f"{b.base_url}/api/v1/federation/provenance/uploads/{some}").json()
        assert [s["origin"] for s in provenance["sources"]] == [a.actor_url]
        torrent = httpx.get(f"{b.base_url}/api/v1/uploads/{some}/torrent")
        assert torrent.status_code == 200
        listed = httpx.get(f"{b.base_url}/api/v1/uploads", params={"limit": 50}).json()
        assert len(listed["items"]) == 5

        # Live: a new upload, an edit, a removal.
        new = make_upload(a.instance, owner, dataset.slug, tmp_path)
        published.add(new.infohash)
        wait_until(lambda: new.infohash in uploads_of(b), timeout=TIMEOUT, what="live create")
        a.instance.catalogue.edit_dataset(
            owner.account, dataset.slug, DatasetEdit(title="Glaciers II")
        )
        wait_until(lambda: "Glaciers II" in dataset_titles(b), timeout=TIMEOUT, what="live edit")
        assert "Glaciers" not in dataset_titles(b)
        set_status(a.instance, Upload, new.id, Status.removed)
        published.discard(new.infohash)
        wait_until(lambda: new.infohash not in uploads_of(b), timeout=TIMEOUT, what="delete")
        assert new.infohash in uploads_of(b, status="removed")

        a_key = a.app.state.federation.keys.public_key_multibase
        a_actor = a.actor_url
        a.stop()

        with InstanceThread(make_settings, name="gamma") as c:
            response = follow(c, admin_headers(c), b.actor_url)
            assert response.status_code == 202, response.text
            wait_until(lambda: uploads_of(c) == published, timeout=TIMEOUT, what="C from B")
            wait_until(lambda: "Glaciers II" in dataset_titles(c), timeout=TIMEOUT, what="edit")
            assert new.infohash not in uploads_of(c)
            with c.instance.db.read() as s:
                objects = [o for o in s.query(FedObject) if o.origin == a_actor]
            assert {o.kind for o in objects} == {"dataset", "upload"}
            assert len([o for o in objects if o.kind == "upload"]) >= len(published)
            for obj in objects:
                verified = verify_proof(json.loads(obj.json))
                assert verified.public_key_multibase == a_key
                assert obj.received_from == b.actor_url


def test_dedup_fork_block_and_allowlist(make_settings: Any, tmp_path: Path) -> None:
    with (
        InstanceThread(make_settings, name="alpha") as a,
        InstanceThread(make_settings, name="beta") as b,
        InstanceThread(make_settings, name="gamma") as c,
    ):
        torrent = sample_torrent(tmp_path / "shared", "shared", version="hybrid", seed="same")
        shared = None
        for node in (a, c):
            user = make_user(node.instance, "owner", Role.uploader)
            ds = make_dataset(node.instance, user, title=f"Rivers at {node.name}")
            shared = node.instance.catalogue.create_upload(
                user.account, UploadIn(dataset=ds.slug), torrent
            )
        assert shared is not None
        b_admin = admin_headers(b)
        for node in (a, c):
            assert follow(b, b_admin, node.actor_url).status_code == 202
        wait_until(
            lambda: (
                len(
                    httpx.get(
                        f"{b.base_url}/api/v1/federation/provenance/uploads/{shared.infohash}"
                    )
                    .json()
                    .get("sources", [])
                )
                == 2
            ),
            timeout=TIMEOUT,
            what="two sources",
        )
        with b.instance.db.read() as s:
            assert s.query(Upload).count() == 1
        wait_until(lambda: len(dataset_titles(b)) == 2, timeout=TIMEOUT, what="both datasets")

        # A fork: an edit signed by alpha whose parent is not the version beta holds.
        fed_a = a.app.state.federation
        with a.instance.db.read() as s:
            current = s.query(FedObject).filter_by(kind="dataset", local=True).one()
            document = json.loads(current.json)
        document.pop("proof")
        document["name"] = "Rivers, another branch"
        document["contentHash"] = "sha256:" + "1" * 64
        document["id"] = document["prov:specializationOf"] + "/versions/" + "1" * 64
        document["prov:wasRevisionOf"] = document["prov:specializationOf"] + "/versions/" + "2" * 64
        signed = create_proof(document, fed_a.keys.ed25519_private)
        update = fed_a.activity("Update", signed)
        body = json.dumps(create_proof(update, fed_a.keys.ed25519_private)).encode()
        inbox = f"{b.base_url}/actor/inbox"
        headers = fed_a.sign("POST", inbox, body) | {"Content-Type": "application/activity+json"}
        assert httpx.post(inbox, content=body, headers=headers).status_code == 202
        wait_until(
            lambda: httpx.get(f"{b.base_url}/api/v1/federation/forks", headers=b_admin).json(),
            timeout=TIMEOUT,
            what="the fork (applied by a job after the 202)",
        )
        forks = httpx.get(f"{b.base_url}/api/v1/federation/forks", headers=b_admin).json()
        assert [f["object"] for f in forks] == [document["id"]]
        assert "Rivers, another branch" not in dataset_titles(b)
        assert httpx.get(f"{b.base_url}/api/v1/federation/forks").status_code == 401

        # Blocking alpha: its follow is gone, its deliveries refused, ours not sent.
        blocked = httpx.post(
            f"{b.base_url}/api/v1/federation/peers",
            json={"actor": a.actor_url, "blocked": True},
            headers=b_admin,
        )
        assert blocked.status_code == 200
        follows = httpx.get(f"{b.base_url}/api/v1/federation/follows", headers=b_admin).json()
        assert a.actor_url not in {f["actor"] for f in follows}
        owner = make_user(a.instance, "late", Role.uploader)
        late_ds = make_dataset(a.instance, owner, title="Late")
        late = make_upload(a.instance, owner, late_ds.slug, tmp_path)
        body = json.dumps(update | {"id": update["id"] + "x"}).encode()
        headers = fed_a.sign("POST", inbox, body) | {"Content-Type": "application/activity+json"}
        assert httpx.post(inbox, content=body, headers=headers).status_code == 403
        assert follow(b, b_admin, a.actor_url).status_code == 403
        assert late.infohash not in uploads_of(b)

    # Allowlist: nothing is followed until an admin allows the host.
    with (
        InstanceThread(make_settings, name="delta") as d,
        InstanceThread(make_settings, name="epsilon", federation_mode="allowlist") as e,
    ):
        e_admin = admin_headers(e)
        assert follow(e, e_admin, d.actor_url).status_code == 403
        allowed = httpx.post(
            f"{e.base_url}/api/v1/federation/peers",
            json={"actor": d.actor_url, "allowed": True},
            headers=e_admin,
        )
        assert allowed.status_code == 200
        assert follow(e, e_admin, d.actor_url).status_code == 202
        wait_until(
            lambda: ops.follow_state(e, d.actor_url, "outbound") == "accepted",
            timeout=TIMEOUT,
            what="accepted",
        )
