"""Inbox deliveries are applied in batches: a `federation.receive` job takes its
sender's other due activities with it and applies them together, in order. Each
delivered Create still ends as exactly one catalogue row, an activity that cannot be
applied fails alone (its job, not its neighbours'), a Delete that overtook its Create
is retried until the Create has arrived, and an upload whose `.torrent` cannot be
fetched is kept for a later fetch, as when each activity was applied alone."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Upload
from holdfast.db.base import utcnow
from holdfast.federation.httpsig import sign_request
from holdfast.federation.models import FedObject, OutboxItem, SeenActivity
from holdfast.federation.proofs import create_proof
from holdfast.federation.replication import Receiver
from holdfast.jobs import (
    JobRunner,
    claim_matching,
    complete_many,
    default_registry,
    enqueue,
    requeue,
)
from holdfast.jobs.engine import claim
from holdfast.jobs.models import Job
from tests.federation.interop.instances import InstanceThread
from tests.instance.helpers import make_dataset, make_upload, make_user

pytestmark = pytest.mark.slow
RECEIVE = "federation.receive"


def deliver(origin: InstanceThread, target: InstanceThread, activity: dict[str, Any]) -> None:
    """POST `activity` to the target's inbox, signed by the origin as its peers sign."""
    fed = origin.app.state.federation
    inbox = f"{target.base_url}/actor/inbox"
    body = json.dumps(activity).encode()
    headers = sign_request(
        "POST", inbox, private_key=fed.keys.rsa_private, key_id=fed.identity.key_id, body=body
    )
    headers["Content-Type"] = "application/activity+json"
    response = httpx.post(inbox, content=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["result"] == "queued"


def upload_creates(node: InstanceThread) -> list[dict[str, Any]]:
    """The node's Creates of uploads, oldest first, as it delivers them."""
    with node.instance.db.read() as s:
        texts = s.scalars(
            select(OutboxItem.json).where(OutboxItem.type == "Create").order_by(OutboxItem.id)
        ).all()
    creates = [json.loads(t) for t in texts]
    return [c for c in creates if "holdfast:Upload" in c["object"]["type"]]


def resigned(origin: InstanceThread, obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `obj` with `changes`, proved again by the origin's key (so the inbox
    accepts it: only applying it can tell what is wrong with it)."""
    doc = {k: v for k, v in obj.items() if k != "proof"}
    doc.update(changes)
    proved: dict[str, Any] = create_proof(doc, origin.app.state.federation.keys.ed25519_private)
    return proved


def create_of(origin: InstanceThread, obj: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{origin.base_url}/activities/{name}",
        "type": "Create",
        "actor": origin.actor_url,
        "object": obj,
    }


def delete_of(origin: InstanceThread, object_id: str, name: str) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{origin.base_url}/activities/{name}",
        "type": "Delete",
        "actor": origin.actor_url,
        "object": object_id,
    }


def receive_jobs(node: InstanceThread) -> dict[str, Job]:
    """The node's receive jobs by activity id."""
    with node.instance.db.read() as s:
        jobs = s.scalars(select(Job).where(Job.kind == RECEIVE)).all()
        s.expunge_all()
    return {json.loads(j.payload["body"])["id"]: j for j in jobs}


def run_jobs(node: InstanceThread) -> None:
    """Run every job that is due, in this thread, until none is."""
    JobRunner(node.instance.db, node.instance.settings, threads=1).run_once()


def upload_rows(node: InstanceThread) -> dict[str, int]:
    """How many catalogue rows each infohash has."""
    with node.instance.db.read() as s:
        rows = s.execute(
            select(Upload.infohash_v2, func.count()).group_by(Upload.infohash_v2)
        ).all()
    return {h: n for h, n in rows}


def states(node: InstanceThread) -> dict[str, str]:
    with node.instance.db.read() as s:
        rows = s.execute(select(FedObject.object_id, FedObject.state)).all()
    return {object_id: state for object_id, state in rows}


def test_claim_matching_takes_one_senders_due_jobs_oldest_first(instance: Any) -> None:
    db = instance.db
    kind = default_registry.get(RECEIVE)
    with db.write() as s:
        ids = [
            enqueue(s, kind, {"body": "{}", "sender": sender})
            for sender in ("x", "y", "x", "x", "x", "y")
        ]
        later = enqueue(s, kind, {"body": "{}", "sender": "x"}, run_at=timedelta(hours=1))
    held = claim(db, "w:0", default_registry, default_lock_seconds=60)
    assert held is not None and held.id == ids[0]
    taken = claim_matching(
        db, "w:0", kind, field="sender", value="x", limit=2, default_lock_seconds=60
    )
    assert [c.id for c in taken] == [ids[2], ids[3]]  # not held, not y's, not due later
    assert {(c.attempt, c.worker) for c in taken} == {(1, "w:0")}
    rest = claim_matching(
        db, "w:1", kind, field="sender", value="x", limit=10, default_lock_seconds=60
    )
    assert [c.id for c in rest] == [ids[4]]
    assert complete_many(db, [*taken, rest[0]], kind) == [ids[2], ids[3], ids[4]]
    # A job no longer held as it was claimed is left as it is.
    assert complete_many(db, taken, kind) == []
    with db.read() as s:
        state = dict(s.execute(select(Job.id, Job.state)).all())
    assert [state[i] for i in ids] == ["running", "queued", "done", "done", "done", "queued"]
    assert state[later] == "queued"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the inbox jobs applied."""
    sizes: list[int] = []
    original = Receiver.apply_inbox

    async def counted(self: Receiver, activities: list[Any], sender: str) -> Any:
        sizes.append(len(activities))
        return await original(self, activities, sender)

    monkeypatch.setattr(Receiver, "apply_inbox", counted)
    return sizes


def test_many_creates_end_as_one_row_each_applied_together(
    make_settings: Any, tmp_path: Path, spy: list[int]
) -> None:
    # The receiving instance first: it gets the test's database (PostgreSQL too).
    with (
        InstanceThread(make_settings, name="beta", run_jobs=False) as b,
        InstanceThread(make_settings, name="alpha") as a,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        rivers = make_dataset(a.instance, owner, title="Rivers")
        lakes = make_dataset(a.instance, owner, title="Lakes")
        published = [
            make_upload(a.instance, owner, (rivers, lakes)[n % 2].slug, tmp_path).infohash_v2
            for n in range(24)
        ]
        creates = upload_creates(a)
        assert len(creates) == 24
        for create in creates:
            deliver(a, b, create)
        for create in creates[:3]:  # delivered twice: still one job each
            deliver(a, b, create)
        assert len(receive_jobs(b)) == 24

        run_jobs(b)
        assert spy == [24]  # the first job took the other 23 with it
        jobs = receive_jobs(b)
        assert {(j.state, j.attempts) for j in jobs.values()} == {("done", 1)}
        assert upload_rows(b) == {h: 1 for h in published}
        object_ids = {c["object"]["id"] for c in creates}
        assert {k: v for k, v in states(b).items() if k in object_ids} == dict.fromkeys(
            object_ids, "current"
        )
        with b.instance.db.read() as s:
            seen = set(s.scalars(select(SeenActivity.activity_id)))
        assert {c["id"] for c in creates} <= seen

        # Run again (a worker that died before recording its jobs): nothing changes.
        with b.instance.db.write() as s:
            for j in jobs.values():
                requeue(s, j.id)
        spy.clear()
        run_jobs(b)
        assert spy == [24]
        assert upload_rows(b) == {h: 1 for h in published}
        assert {j.state for j in receive_jobs(b).values()} == {"done"}


def test_a_bad_activity_fails_alone_and_an_unfetchable_torrent_is_fetched_later(
    make_settings: Any, tmp_path: Path, spy: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("holdfast.federation.jobs.RECEIVE_BATCH", 3)  # batches of 3
    # The receiving instance first: it gets the test's database (PostgreSQL too).
    with (
        InstanceThread(make_settings, name="beta", run_jobs=False) as b,
        InstanceThread(make_settings, name="alpha") as a,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        rivers = make_dataset(a.instance, owner, title="Rivers")
        published = [
            make_upload(a.instance, owner, rivers.slug, tmp_path).infohash_v2 for _ in range(6)
        ]
        creates = upload_creates(a)
        template = creates[0]["object"]
        # Proved by its origin, but its .torrent is another upload's: refused when applied.
        wrong = "c" * 64
        forged = resigned(
            a,
            template,
            id=f"{a.base_url}/uploads/{wrong}",
            infohashV2=wrong,
            infohashV1="c" * 40,
        )
        # Its .torrent cannot be fetched (for now): kept unfetched and fetched again later.
        missing = "d" * 64
        unfetchable = resigned(
            a,
            template,
            id=f"{a.base_url}/uploads/{missing}",
            infohashV2=missing,
            infohashV1="d" * 40,
            torrent=f"{a.base_url}/api/v1/uploads/{missing}/torrent",
        )
        bad = create_of(a, forged, "forged")
        later = create_of(a, unfetchable, "unfetchable")
        sequence = [*creates[:3], bad, *creates[3:5], later, creates[5]]
        for activity in sequence:
            deliver(a, b, activity)

        run_jobs(b)
        assert len(sequence) == 8 and spy == [3, 3, 2]
        jobs = receive_jobs(b)
        assert jobs[bad["id"]].state == "dead"
        assert jobs[bad["id"]].attempts == 1
        assert "refused" in (jobs[bad["id"]].last_error or "")
        good = [c["id"] for c in creates] + [later["id"]]
        assert {jobs[i].state for i in good} == {"done"}
        assert all(jobs[i].last_error is None for i in good)
        assert upload_rows(b) == {h: 1 for h in published}
        found = states(b)
        assert found[unfetchable["id"]] == "unfetched"
        assert forged["id"] not in found
        with b.instance.db.read() as s:
            seen = set(s.scalars(select(SeenActivity.activity_id)))
            refetch = s.scalars(select(Job.payload).where(Job.kind == "federation.refetch")).all()
        assert bad["id"] not in seen and later["id"] in seen
        assert [p["object"] for p in refetch] == [unfetchable["id"]]


def test_a_delete_that_overtakes_its_create_is_applied_after_it(
    make_settings: Any, tmp_path: Path, spy: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retried only when the test says so below, however slow this machine is.
    monkeypatch.setattr("holdfast.federation.jobs.OVERTAKEN_RETRY_SECONDS", 3600.0)
    # The receiving instance first: it gets the test's database (PostgreSQL too).
    with (
        InstanceThread(make_settings, name="beta", run_jobs=False) as b,
        InstanceThread(make_settings, name="alpha") as a,
    ):
        owner = make_user(a.instance, "owner", Role.uploader)
        rivers = make_dataset(a.instance, owner, title="Rivers")
        published = [
            make_upload(a.instance, owner, rivers.slug, tmp_path).infohash_v2 for _ in range(3)
        ]
        creates = upload_creates(a)
        targets = [c["object"]["id"] for c in creates]
        first = delete_of(a, targets[1], "delete-1")  # the oldest job: the one claimed
        second = delete_of(a, targets[2], "delete-2")  # taken along with it
        for activity in (first, creates[0], second, creates[1], creates[2]):
            deliver(a, b, activity)

        run_jobs(b)
        assert spy == [5]
        jobs = receive_jobs(b)
        assert upload_rows(b) == {h: 1 for h in published}
        for delete in (first, second):
            assert jobs[delete["id"]].state == "retrying"
            assert "not known yet" in (jobs[delete["id"]].last_error or "")
        assert {jobs[c["id"]].state for c in creates} == {"done"}
        with b.instance.db.read() as s:
            seen = set(s.scalars(select(SeenActivity.activity_id)))
        assert first["id"] not in seen and second["id"] not in seen

        # Their retry is due: both deletes now find their uploads.
        spy.clear()
        with b.instance.db.write() as s:
            s.execute(
                update(Job)
                .where(Job.id.in_([jobs[first["id"]].id, jobs[second["id"]].id]))
                .values(next_attempt_at=utcnow())
            )
        run_jobs(b)
        assert spy == [2]
        jobs = receive_jobs(b)
        assert {jobs[d["id"]].state for d in (first, second)} == {"done"}
        found = states(b)
        assert [found[t] for t in targets] == ["current", "deleted", "deleted"]
        with b.instance.db.read() as s:
            status = dict(s.execute(select(Upload.infohash_v2, Upload.status)).all())
        assert [status[h] for h in published] == ["approved", "removed", "removed"]
