"""Moderation and administration pages: the queue, decisions, reports, audit log, roles."""

from __future__ import annotations

import pytest

from holdfast.accounts.models import Role
from holdfast.catalogue.models import Status
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.web.helpers import HTMX, Browser, errors_of, text_of


@pytest.fixture
def setup(app, instance, tmp_path):
    owner = make_user(instance, "newbie", Role.member)
    pending = make_dataset(instance, owner, title="Awaiting review", status=Status.pending)
    approved = make_dataset(instance, owner, title="Already public")
    upload = make_upload(instance, owner, approved.slug, tmp_path, status=Status.pending)
    make_user(instance, "mod", Role.moderator)
    mod = Browser(app)
    mod.login("mod")
    return owner, pending, approved, upload, mod


def test_queue_lists_pending_items_and_approves_with_a_plain_form(instance, setup):
    _owner, pending, approved, upload, mod = setup
    page = mod.get("/moderation")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Awaiting review" in text
    assert upload.name in text
    assert f'id="queue-dataset-{pending.slug}"' in page.text
    assert f'id="queue-upload-{upload.infohash}"' in page.text
    assert f'id="queue-dataset-{approved.slug}"' not in page.text
    r = mod.post(
        "/moderation/decide",
        {"target_type": "dataset", "target": pending.slug, "action": "approve"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/moderation"
    assert instance.catalogue.get_dataset(None, pending.slug).status == "approved"


def test_deny_needs_a_reason_shown_next_to_the_field_with_htmx(instance, setup):
    _owner, _pending, _approved, upload, mod = setup
    mod.get("/moderation")
    r = mod.post(
        "/moderation/decide",
        {"target_type": "upload", "target": upload.infohash, "action": "deny"},
        headers=HTMX,
    )
    assert r.status_code == 422
    assert r.text.lstrip().startswith("<li")  # only the item, for HTMX to swap
    assert errors_of(r.text) == {f"queue-upload-{upload.infohash}": "required"}
    assert instance.catalogue.get_upload(mod_account(instance), upload.infohash).status == "pending"
    r = mod.post(
        "/moderation/decide",
        {
            "target_type": "upload",
            "target": upload.infohash,
            "action": "deny",
            "reason": "wrong files",
        },
        headers=HTMX,
    )
    assert r.status_code == 200
    assert "denied" in r.text
    assert "<html" not in r.text
    got = instance.catalogue.get_upload(mod_account(instance), upload.infohash)
    assert got.status == "denied"
    assert got.moderation_note == "wrong files"


def mod_account(instance):
    return instance.accounts.get("mod")


def test_members_cannot_moderate(app, instance, setup):
    _owner, pending, _approved, _upload, _mod = setup
    b = Browser(app)
    b.login("newbie")
    for path in ("/moderation", "/moderation/reports", "/moderation/audit", "/admin"):
        assert b.get(path).status_code == 403, path
    r = b.post(
        "/moderation/decide",
        {"target_type": "dataset", "target": pending.slug, "action": "approve"},
    )
    assert r.status_code == 403
    assert (
        instance.catalogue.get_dataset(instance.accounts.get("newbie"), pending.slug).status
        == "pending"
    )
    assert "Moderation</a>" not in b.get("/").text


def test_remove_and_restore_from_the_dataset_page(app, instance, setup):
    _owner, _pending, approved, _upload, mod = setup
    page = mod.get(f"/datasets/{approved.slug}")
    assert "Remove</button>" in page.text
    r = mod.post(
        "/moderation/decide",
        {
            "target_type": "dataset",
            "target": approved.slug,
            "action": "remove",
            "next": f"/datasets/{approved.slug}",
        },
    )
    assert r.status_code == 422  # no reason
    assert instance.catalogue.get_dataset(None, approved.slug).status == "approved"
    r = mod.post(
        "/moderation/decide",
        {
            "target_type": "dataset",
            "target": approved.slug,
            "action": "remove",
            "reason": "spam",
            "next": f"/datasets/{approved.slug}",
        },
    )
    assert r.status_code == 303
    anonymous = Browser(app).get(f"/datasets/{approved.slug}")
    assert anonymous.status_code == 410
    assert "removed" in anonymous.text
    assert "Restore</button>" in mod.get(f"/datasets/{approved.slug}").text
    mod.post(
        "/moderation/decide",
        {"target_type": "dataset", "target": approved.slug, "action": "restore"},
    )
    assert Browser(app).get(f"/datasets/{approved.slug}").status_code == 200


def test_reports_are_sent_resolved_and_audited(app, instance, setup):
    _owner, _pending, approved, _upload, mod = setup
    reader = Browser(app)
    reader.login("newbie")
    page = reader.get(f"/datasets/{approved.slug}")
    assert "Report this dataset" in page.text
    r = reader.post(
        "/report",
        {
            "target_type": "dataset",
            "target": approved.slug,
            "kind": "incorrect",
            "reason": "wrong year",
        },
    )
    assert r.status_code == 200
    assert "Report sent" in r.text
    reports = mod.get("/moderation/reports")
    text = text_of(reports.text)
    assert "wrong year" in text and "Already public" in text
    report_id = instance.moderation.reports(mod_account(instance))[0][0].id
    r = mod.post(
        f"/moderation/reports/{report_id}", {"status": "resolved", "resolution": "fixed the year"}
    )
    assert r.status_code == 303
    assert "No reports." in mod.get("/moderation/reports").text
    assert "fixed the year" in mod.get("/moderation/reports?status=resolved").text
    audit = text_of(mod.get("/moderation/audit").text)
    assert "report.resolved" in audit
    assert "fixed the year" in audit
    # A report needs a known kind; a bad one changes nothing.
    r = reader.post(
        "/report", {"target_type": "dataset", "target": approved.slug, "kind": "boring"}
    )
    assert r.status_code == 422
    assert instance.moderation.reports(mod_account(instance), status=None)[1] == 1


def test_admin_changes_roles_and_sees_settings(app, instance):
    make_user(instance, "boss", Role.admin)
    make_user(instance, "worker", Role.member)
    admin = Browser(app)
    admin.login("boss")
    page = admin.get("/admin")
    assert page.status_code == 200
    assert "open_registration" in page.text
    assert "secret_key" not in page.text
    r = admin.post("/admin/accounts/worker", {"role": "uploader", "trusted": "true"})
    assert r.status_code == 303
    worker = instance.accounts.get("worker")
    assert worker.role == "uploader" and worker.trusted
    # An admin cannot demote themself: the error is shown on that account's row.
    r = admin.post("/admin/accounts/boss", {"role": "member"})
    assert r.status_code == 422
    assert "cannot demote" in r.text
    assert instance.accounts.get("boss").role == "admin"
    r = admin.post("/admin/accounts/worker", {"role": "emperor"})
    assert r.status_code == 422
    assert instance.accounts.get("worker").role == "uploader"
    audit = text_of(admin.get("/moderation/audit").text)
    assert "account.update" in audit and "worker" in audit
    r = admin.post("/admin/accounts/worker", {"role": "member", "disabled": "true"})
    assert r.status_code == 303
    assert instance.accounts.get("worker").disabled_at is not None
