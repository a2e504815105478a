"""Re-sync, relays, unfollow and review between real instances on 127.0.0.1.

A delivery that never happened is brought by a re-sync from the per-peer cursor (the
admin sync route and the periodic job); an origin's Delete reaches an instance that
only follows the relay; unfollowing sends Undo and the peer drops the follower; a peer
under review has its items queued for moderators, and approving one publishes it here
and Announces it; an upload whose .torrent cannot be fetched from its stopped origin
is fetched from the peer that relayed it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Dataset, Status, Upload
from holdfast.federation.jobs import resync_job
from holdfast.federation.models import FedObject, Follow, OutboxItem, Peer
from holdfast.federation.replication import relay_torrent_url
from holdfast.jobs.models import Job
from tests.federation.interop.instances import InstanceThread, wait_until
from tests.instance.helpers import User, make_dataset, make_upload, make_user, set_status

pytestmark = pytest.mark.slow
TIMEOUT = 60.0
AS = {"Accept": "application/activity+json"}


def uploads_of(node: InstanceThread, *, status: str = "approved") -> set[str]:
    with node.instance.db.read() as s:
        return set(s.scalars(select(Upload.infohash_v2).where(Upload.status == status))) | set(
            s.scalars(select(Upload.infohash_v1).where(Upload.status == status))
        )


def admin(node: InstanceThread) -> dict[str, str]:
    return make_user(node.instance, "root", Role.admin).headers


def api(node: InstanceThread, path: str) -> str:
    return f"{node.base_url}/api/v1{path}"


def follow(node: InstanceThread, headers: dict[str, str], actor: str) -> None:
    response = httpx.post(
        api(node, "/federation/follows"), json={"actor": actor}, headers=headers, timeout=30
    )
    assert response.status_code == 202, response.text


def publish(node: InstanceThread, title: str, tmp_path: Path) -> tuple[User, Dataset, Upload]:
    """An uploader on `node`, a dataset titled `title` and one upload in it."""
    owner = make_user(node.instance, "owner", Role.uploader)
    dataset = make_dataset(node.instance, owner, title=title)
    return owner, dataset, make_upload(node.instance, owner, dataset.slug, tmp_path)


def mirror(
    node: InstanceThread, headers: dict[str, str], origin: InstanceThread, infohash: str, what: str
) -> None:
    """`node` follows `origin` and waits for the upload `infohash` to arrive."""
    follow(node, headers, origin.actor_url)
    wait_until(lambda: infohash in uploads_of(node), timeout=TIMEOUT, what=what)


def upload_object(node: InstanceThread) -> FedObject:
    """The (only) upload object `node` holds."""
    with node.instance.db.read() as s:
        obj = s.scalar(select(FedObject).where(FedObject.kind == "upload"))
    assert obj is not None
    return obj


def peer_id(node: InstanceThread, headers: dict[str, str], actor: str) -> int:
    peers = httpx.get(api(node, "/federation/peers"), headers=headers).json()
    return int(next(p["id"] for p in peers if p["actor"] == actor))


def cursor(node: InstanceThread, headers: dict[str, str], peer: int) -> int:
    peers = httpx.get(api(node, "/federation/peers"), headers=headers).json()
    return int(next(p["cursor"] for p in peers if p["id"] == peer))


def objects(node: InstanceThread, kind: str) -> int:
    with node.instance.db.read() as s:
        return len(s.scalars(select(FedObject.id).where(FedObject.kind == kind)).all())


def followers(node: InstanceThread) -> list[str]:
    items: list[str] = httpx.get(f"{node.base_url}/actor/followers").json()["orderedItems"]
    return items


def set_follower_state(origin: InstanceThread, follower: InstanceThread, state: str) -> None:
    """On `origin`, stop (or resume) delivering to `follower`: its deliveries are missed."""
    with origin.instance.db.write() as s:
        peer = s.scalar(select(Peer).where(Peer.actor_id == follower.actor_url))
        assert peer is not None
        row = s.scalar(
            select(Follow).where(Follow.peer_id == peer.id, Follow.direction == "inbound")
        )
        assert row is not None
        row.state = state


def deliveries_to(node: InstanceThread, inbox_of: InstanceThread) -> int:
    """Deliveries queued for `inbox_of`: single ones and those inside fan-out jobs."""
    with node.instance.db.read() as s:
        jobs = s.scalars(
            select(Job).where(Job.kind.in_(("federation.deliver", "federation.fanout")))
        ).all()
    inboxes = [
        inbox
        for j in jobs
        for inbox in ([j.payload["inbox"]] if "inbox" in j.payload else j.payload["inboxes"])
    ]
    return len([inbox for inbox in inboxes if inbox.startswith(inbox_of.base_url)])


@pytest.fixture
def instances(make_settings: Any) -> Iterator[Callable[..., list[InstanceThread]]]:
    """Starts instances with the given names; they stop, last first, after the test."""
    with ExitStack() as stack:

        def start(*names: str) -> list[InstanceThread]:
            return [stack.enter_context(InstanceThread(make_settings, name=n)) for n in names]

        yield start


def test_resync_brings_missed_deliveries_and_unfollow_sends_undo(
    instances: Callable[..., list[InstanceThread]], tmp_path: Path
) -> None:
    a, b = instances("alpha", "beta")
    owner, dataset, first = publish(a, "Tides", tmp_path)
    b_admin = admin(b)
    mirror(b, b_admin, a, first.infohash, "backfill")
    wait_until(lambda: b.actor_url in followers(a), timeout=TIMEOUT, what="B follows A")
    a_peer = peer_id(b, b_admin, a.actor_url)

    # A delivery that never happens: A publishes while it does not deliver to B.
    set_follower_state(a, b, "pending")
    before = deliveries_to(a, b)
    missed = make_upload(a.instance, owner, dataset.slug, tmp_path)
    assert deliveries_to(a, b) == before  # nothing was sent to B
    set_follower_state(a, b, "accepted")
    assert missed.infohash not in uploads_of(b)
    # ...while an accepted follower does get one queued (so the count above can move)
    make_upload(a.instance, owner, dataset.slug, tmp_path)
    assert deliveries_to(a, b) > before

    # The admin sync route: not for anyone else, 404 for an unknown peer.
    route = api(b, f"/federation/peers/{a_peer}/sync")
    assert httpx.post(route).status_code == 401
    user = make_user(b.instance, "someone", Role.uploader).headers
    assert httpx.post(route, headers=user).status_code == 403
    assert httpx.post(api(b, "/federation/peers/99999/sync"), headers=b_admin).status_code == 404
    synced_to = cursor(b, b_admin, a_peer)
    response = httpx.post(route, headers=b_admin)
    assert response.status_code == 202, response.text
    wait_until(lambda: missed.infohash in uploads_of(b), timeout=TIMEOUT, what="sync route")
    with a.instance.db.read() as s:
        last = s.scalar(
            select(OutboxItem.id)
            .where(OutboxItem.public.is_(True))
            .order_by(OutboxItem.id.desc())
            .limit(1)
        )
    assert last is not None and last > synced_to
    wait_until(
        lambda: cursor(b, b_admin, a_peer) >= last,
        timeout=TIMEOUT,
        what="the cursor at the end of A's outbox",
    )

    # The periodic re-sync: a peer not read for a while is read again from its cursor.
    set_follower_state(a, b, "pending")
    late = make_upload(a.instance, owner, dataset.slug, tmp_path)
    set_follower_state(a, b, "accepted")
    with b.instance.db.write() as s:
        peer = s.get(Peer, a_peer)
        assert peer is not None and peer.synced_at is not None
        peer.synced_at = peer.synced_at.replace(year=peer.synced_at.year - 1)
    assert late.infohash not in uploads_of(b)
    ctx = SimpleNamespace(db=b.instance.db, settings=b.instance.settings)
    resync_job(ctx, {})  # type: ignore[arg-type]
    wait_until(lambda: late.infohash in uploads_of(b), timeout=TIMEOUT, what="re-sync")

    # Unfollow: B sends Undo, A drops B from its followers and sends it nothing more.
    outbound = [
        f
        for f in httpx.get(api(b, "/federation/follows"), headers=b_admin).json()
        if f["direction"] == "outbound" and f["actor"] == a.actor_url
    ]
    assert len(outbound) == 1
    ended = api(b, f"/federation/follows/{outbound[0]['id']}")
    assert httpx.delete(ended, headers=user).status_code == 403
    assert httpx.delete(ended, headers=b_admin).status_code == 204
    assert httpx.delete(ended, headers=b_admin).status_code == 404
    wait_until(lambda: b.actor_url not in followers(a), timeout=TIMEOUT, what="Undo")
    with b.instance.db.read() as s:
        undo = s.scalar(select(OutboxItem).where(OutboxItem.type == "Undo"))
        assert undo is not None and json.loads(undo.json)["object"]["object"] == a.actor_url
    before = deliveries_to(a, b)
    make_upload(a.instance, owner, dataset.slug, tmp_path)
    assert deliveries_to(a, b) == before


def test_origin_delete_is_relayed_to_an_instance_following_only_the_relay(
    instances: Callable[..., list[InstanceThread]], tmp_path: Path
) -> None:
    a, b, c = instances("alpha", "beta", "gamma")
    _owner, _dataset, upload = publish(a, "Moraines", tmp_path)
    mirror(b, admin(b), a, upload.infohash, "A to B")
    c_admin = admin(c)
    mirror(c, c_admin, b, upload.infohash, "B to C")
    follows = httpx.get(api(c, "/federation/follows"), headers=c_admin).json()
    assert {f["actor"] for f in follows} == {b.actor_url}
    obj = upload_object(c)
    assert (obj.origin, obj.received_from) == (a.actor_url, b.actor_url)
    assert httpx.get(f"{c.base_url}/uploads/{upload.infohash}", headers=AS).status_code == 200

    set_status(a.instance, Upload, upload.id, Status.removed)
    wait_until(lambda: upload.infohash in uploads_of(b, status="removed"), timeout=TIMEOUT)
    wait_until(
        lambda: upload.infohash in uploads_of(c, status="removed"),
        timeout=TIMEOUT,
        what="the relayed Delete at C",
    )
    assert upload_object(c).state == "deleted"
    gone = httpx.get(f"{c.base_url}/uploads/{upload.infohash}", headers=AS)
    assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    with b.instance.db.read() as s:
        relayed = [
            json.loads(i.json)
            for i in s.scalars(select(OutboxItem).where(OutboxItem.type == "Announce"))
        ]
    deletes = [r["object"] for r in relayed if r["object"].get("type") == "Delete"]
    assert len(deletes) == 1 and deletes[0]["actor"] == a.actor_url and "proof" in deletes[0]


def test_review_peer_items_wait_for_moderators_then_are_announced(
    instances: Callable[..., list[InstanceThread]], tmp_path: Path
) -> None:
    a, b = instances("alpha", "beta")
    _owner, _dataset, upload = publish(a, "Permafrost", tmp_path)
    b_admin = admin(b)
    review = httpx.post(
        api(b, "/federation/peers"),
        json={"actor": a.actor_url, "trust": "review"},
        headers=b_admin,
    )
    assert review.status_code == 200 and review.json()["trust"] == "review"
    follow(b, b_admin, a.actor_url)
    wait_until(
        lambda: upload.infohash in uploads_of(b, status="pending"),
        timeout=TIMEOUT,
        what="the upload in B's review queue",
    )
    listed = httpx.get(api(b, "/uploads")).json()["items"]
    assert listed == []
    assert httpx.get(f"{b.base_url}/uploads/{upload.infohash}", headers=AS).status_code == 404
    queue = httpx.get(api(b, "/moderation/queue"), headers=b_admin).json()
    assert [u["infohash"] for u in queue["uploads"]] == [upload.infohash]
    assert len(queue["datasets"]) == 1
    with b.instance.db.read() as s:
        assert s.scalar(select(OutboxItem.id).where(OutboxItem.type == "Announce")) is None

    slug = queue["datasets"][0]["slug"]
    for target_type, target in (("dataset", slug), ("upload", upload.infohash)):
        decided = httpx.post(
            api(b, "/moderation/decisions"),
            json={"target_type": target_type, "target": target, "action": "approve"},
            headers=b_admin,
        )
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
    listed = httpx.get(api(b, "/uploads")).json()["items"]
    assert [u["infohash"] for u in listed] == [upload.infohash]
    assert httpx.get(f"{b.base_url}/uploads/{upload.infohash}", headers=AS).status_code == 200
    with b.instance.db.read() as s:
        announced = [
            json.loads(i.json)["object"]
            for i in s.scalars(select(OutboxItem).where(OutboxItem.type == "Announce"))
        ]
    assert upload_object(b).object_id in {o["id"] for o in announced}
    assert all(o["attributedTo"] == a.actor_url for o in announced)


def test_an_unfetched_upload_is_fetched_from_the_relaying_peer(
    instances: Callable[..., list[InstanceThread]], tmp_path: Path
) -> None:
    assert relay_torrent_url("https://b.example/actor", "https://a.example/actor", "ab") == (
        "https://b.example/api/v1/uploads/ab/torrent"
    )
    assert relay_torrent_url("https://a.example/actor", "https://a.example/actor", "ab") is None
    a, b, c = instances("alpha", "beta", "gamma")
    _owner, _dataset, upload = publish(a, "Estuaries", tmp_path)
    mirror(b, admin(b), a, upload.infohash, "A to B")
    with b.instance.db.read() as s:
        docs = {
            o.kind: json.loads(o.json)
            for o in s.scalars(select(FedObject).where(FedObject.origin == a.actor_url))
        }
    a.stop()

    # B relays A's objects to C without its own .torrent link: the origin's link
    # cannot be fetched (A is stopped), so C keeps the upload as unfetched and tries
    # again at the relaying peer's .torrent URL.
    fed_b = b.app.state.federation
    inbox = f"{c.base_url}/actor/inbox"
    for kind in ("dataset", "upload"):
        body = json.dumps(fed_b.activity("Announce", docs[kind])).encode()
        headers = fed_b.sign("POST", inbox, body) | {"Content-Type": "application/activity+json"}
        response = httpx.post(inbox, content=body, headers=headers, timeout=30)
        assert response.status_code == 202, response.text
        if kind == "dataset":
            wait_until(lambda: objects(c, "dataset"), timeout=TIMEOUT, what="dataset at C")
    wait_until(lambda: upload.infohash in uploads_of(c), timeout=TIMEOUT, what="refetch")
    obj = upload_object(c)
    assert obj.state == "current"
    assert (obj.origin, obj.received_from) == (a.actor_url, b.actor_url)
    with c.instance.db.read() as s:
        refetches = s.scalars(select(Job).where(Job.kind == "federation.refetch")).all()
    assert docs["upload"]["torrent"].startswith(a.base_url)
    assert len(refetches) == 1  # the first try (at A's link) failed
