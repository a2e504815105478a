"""Review queue, decisions with reasons, tombstones, reports and the audit log."""

from __future__ import annotations

from holdfast.accounts.models import Role
from tests.instance.helpers import make_user
from tests.instance.torrents import sample_torrent


def test_review_queue_approve_deny_remove(client, instance, tmp_path):
    member = make_user(instance, "member", Role.member)
    mod = make_user(instance, "mod", Role.moderator)
    r = client.post("/api/v1/datasets", json={"title": "Waiting"}, headers=member.headers)
    assert r.json()["status"] == "pending"
    up = client.post(
        "/api/v1/uploads",
        files={"torrent": ("x.torrent", sample_torrent(tmp_path, "w"))},
        data={"dataset": "waiting"},
        headers=member.headers,
    ).json()
    queue = client.get("/api/v1/moderation/queue", headers=mod.headers).json()
    assert [d["slug"] for d in queue["datasets"]] == ["waiting"]
    assert [u["infohash"] for u in queue["uploads"]] == [up["infohash"]]

    decide = lambda **b: client.post("/api/v1/moderation/decisions", json=b, headers=mod.headers)  # noqa: E731
    no_reason = decide(target_type="upload", target=up["infohash"], action="deny")
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]
    assert (
        decide(target_type="dataset", target="waiting", action="approve").json()["status"]
        == "approved"
    )
    assert (
        decide(
            target_type="upload", target=up["infohash"], action="deny", reason="wrong files"
        ).json()["status"]
        == "denied"
    )
    assert client.get(f"/api/v1/uploads/{up['infohash']}").status_code == 404
    assert (
        client.get(f"/api/v1/uploads/{up['infohash']}", headers=member.headers).json()["status"]
        == "denied"
    )
    assert decide(target_type="upload", target=up["infohash"], action="approve").status_code == 200
    assert client.get("/api/v1/datasets/waiting").json()["upload_count"] == 1

    removed = decide(target_type="dataset", target="waiting", action="remove", reason="spam")
    assert removed.json()["status"] == "removed"
    gone = client.get("/api/v1/datasets/waiting")
    assert gone.status_code == 410 and gone.json()["status"] == 410
    assert client.get("/api/v1/datasets/waiting", headers=mod.headers).json()["status"] == "removed"
    assert (
        decide(target_type="dataset", target="waiting", action="restore").json()["status"]
        == "approved"
    )

    actions = [
        e["action"]
        for e in client.get("/api/v1/moderation/audit", headers=mod.headers).json()["items"]
    ]
    assert actions[:5] == [
        "dataset.restore",
        "dataset.remove",
        "upload.approve",
        "upload.deny",
        "dataset.approve",
    ]


def test_reports_are_filed_and_resolved(client, instance):
    uploader = make_user(instance, "upper", Role.uploader)
    reader = make_user(instance, "reader", Role.member)
    mod = make_user(instance, "mod", Role.moderator)
    client.post("/api/v1/datasets", json={"title": "Questionable"}, headers=uploader.headers)
    body = {
        "target_type": "dataset",
        "target": "questionable",
        "kind": "incorrect",
        "reason": "wrong years",
    }
    assert client.post("/api/v1/reports", json=body).status_code == 401
    assert (
        client.post(
            "/api/v1/reports", json=body | {"kind": "bogus"}, headers=reader.headers
        ).status_code
        == 422
    )
    assert client.post("/api/v1/reports", json=body, headers=reader.headers).status_code == 201
    open_reports = client.get("/api/v1/moderation/reports", headers=mod.headers).json()
    assert open_reports["total"] == 1
    report = open_reports["items"][0]
    assert report["reason"] == "wrong years" and report["reported_by"] == "reader"
    r = client.post(
        f"/api/v1/moderation/reports/{report['id']}",
        json={"status": "resolved", "resolution": "fixed the years"},
        headers=mod.headers,
    )
    assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "mod"
    again = client.post(
        f"/api/v1/moderation/reports/{report['id']}",
        json={"status": "dismissed"},
        headers=mod.headers,
    )
    assert again.status_code == 422
    assert client.get("/api/v1/moderation/reports", headers=mod.headers).json()["total"] == 0
