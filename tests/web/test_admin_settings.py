"""Run-time instance settings: edited on the admin page, stored in the database,
applied without a restart, audited, and reset to the start-up settings."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from holdfast.accounts.instance_values import (
    EDITABLE,
    KEY_PREFIX,
    InstanceValues,
    values_of,
)
from holdfast.accounts.models import InstanceValue, Role
from holdfast.errors import InvalidInput, NotAuthenticated, PermissionDenied
from holdfast.moderation.models import AuditEntry
from tests.instance.helpers import PASSWORD, make_user
from tests.web.helpers import BASE_URL, Browser, errors_of, text_of

FORM = {
    "instance_title": "A holdfast archive",
    "instance_description": (
        "A federated archive of research data, kept alive by BitTorrent swarms."
    ),
    "open_registration": "true",
    "federation_auto_accept": "true",
}


def admin_browser(app: Any, instance: Any, name: str = "boss") -> Browser:
    make_user(instance, name, Role.admin)
    browser = Browser(app)
    browser.login(name)
    browser.get("/admin")  # the form's token
    return browser


def stored_rows(instance: Any) -> dict[str, Any]:
    with instance.db.read() as s:
        rows = s.scalars(select(InstanceValue).where(InstanceValue.key.startswith(KEY_PREFIX)))
        return {r.key.removeprefix(KEY_PREFIX): json.loads(r.value) for r in rows}


def audit(instance: Any) -> list[tuple[str, str, dict[str, Any]]]:
    with instance.db.read() as s:
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.startswith("setting."))
            .order_by(AuditEntry.id)
        )
        return [(e.action, e.actor.name if e.actor else "", e.detail) for e in entries]


def test_the_page_shows_each_setting_from_the_start_up_settings(app, instance):
    admin = admin_browser(app, instance)
    page = admin.get("/admin")
    assert page.status_code == 200
    for name in EDITABLE:
        assert f'id="setting-{name}"' in page.text
    assert text_of(page.text).count("From the start-up setting.") == len(EDITABLE)
    assert 'action="/admin/settings/reset"' not in page.text  # nothing to reset
    assert 'value="A holdfast archive"' in page.text
    # The start-up settings table stays, without secrets.
    assert "federation_mode" in page.text and "secret_key" not in page.text


def test_a_change_applies_at_once_everywhere_and_is_audited(app, instance):
    admin = admin_browser(app, instance)
    visitor = Browser(app)
    assert "Register" in visitor.get("/login").text
    r = admin.post(
        "/admin/settings",
        {
            **FORM,
            "instance_title": "  Polar   Data Rescue ",
            "instance_description": "We keep **ice-core** records.\n\n"
            "<script>alert(1)</script> [click](javascript:alert(1))",
            "open_registration": "",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/admin?done=saved#settings"
    assert stored_rows(instance) == {
        "instance_title": "Polar Data Rescue",
        "instance_description": "We keep **ice-core** records.\n\n"
        "<script>alert(1)</script> [click](javascript:alert(1))",
        "open_registration": False,
    }
    # Pages, feeds and registration see the new values without a restart.
    home = visitor.get("/")
    assert "<h1>Polar Data Rescue</h1>" in home.text
    assert "<title>Polar Data Rescue</title>" in home.text
    assert "<strong>ice-core</strong>" in home.text
    assert "<script>alert(1)</script>" not in home.text
    assert "&lt;script&gt;" in home.text  # shown as text, not run
    assert 'href="javascript:' not in home.text  # the link is not made
    assert "Register" not in visitor.get("/login").text
    assert visitor.get("/register").status_code == 403
    api = TestClient(app, base_url=BASE_URL)
    r = api.post("/api/v1/auth/register", json={"name": "newcomer", "password": PASSWORD})
    assert r.status_code == 403
    assert instance.accounts.get("boss") is not None
    feed = visitor.get("/feeds/uploads.rss")
    assert "Polar Data Rescue" in feed.text
    # Only what changed was stored and recorded, with what it was before.
    assert audit(instance) == [
        (
            "setting.update",
            "boss",
            {
                "setting": "instance_title",
                "before": "A holdfast archive",
                "after": "Polar Data Rescue",
            },
        ),
        (
            "setting.update",
            "boss",
            {
                "setting": "instance_description",
                "before": FORM["instance_description"],
                "after": stored_rows(instance)["instance_description"],
            },
        ),
        (
            "setting.update",
            "boss",
            {"setting": "open_registration", "before": True, "after": False},
        ),
    ]
    audit_page = text_of(admin.get("/moderation/audit").text)
    assert "setting.update" in audit_page
    assert "open_registration" in audit_page and "instance settings" in audit_page
    assert "(gone)" not in audit_page
    page = admin.get("/admin?done=saved")
    assert "Settings saved." in page.text
    assert text_of(page.text).count("Set by an admin") == 3
    assert text_of(page.text).count("From the start-up setting.") == 1
    assert "the start-up setting is on" in text_of(page.text)


def test_saving_the_unchanged_form_stores_nothing(app, instance):
    admin = admin_browser(app, instance)
    r = admin.post("/admin/settings", FORM)
    assert r.status_code == 303
    assert r.headers["location"] == "/admin?done=unchanged#settings"
    assert stored_rows(instance) == {}
    assert audit(instance) == []
    assert "Nothing changed." in admin.get("/admin?done=unchanged").text


def test_reset_returns_to_the_start_up_setting(app, instance):
    admin = admin_browser(app, instance)
    admin.post("/admin/settings", {**FORM, "federation_auto_accept": ""})
    assert values_of(instance).get("federation_auto_accept") is False
    page = admin.get("/admin")
    assert 'form="reset-federation_auto_accept"' in page.text
    r = admin.post("/admin/settings/reset", {"setting": "federation_auto_accept"})
    assert r.status_code == 303
    assert r.headers["location"] == "/admin?done=reset#setting-federation_auto_accept"
    assert stored_rows(instance) == {}
    assert values_of(instance).get("federation_auto_accept") is True
    assert audit(instance)[-1] == (
        "setting.reset",
        "boss",
        {"setting": "federation_auto_accept", "before": False, "after": True},
    )
    # Resetting a setting that has no stored value changes and records nothing.
    r = admin.post("/admin/settings/reset", {"setting": "instance_title"})
    assert r.status_code == 303
    assert len(audit(instance)) == 2
    # An unknown setting is refused on the page.
    r = admin.post("/admin/settings/reset", {"setting": "secret_key"})
    assert r.status_code == 422
    assert "no run-time setting named secret_key" in errors_of(r.text)["settings"]
    assert len(audit(instance)) == 2


def test_a_stored_value_overrides_a_start_up_default_both_ways(make_settings):
    from holdfast.app import create_app

    app = create_app(make_settings(open_registration=False, instance_title="Closed archive"))
    instance = app.state.instance
    admin = admin_browser(app, instance)
    visitor = Browser(app)
    assert visitor.get("/register").status_code == 403
    r = admin.post("/admin/settings", {**FORM, "instance_title": "Closed archive"})
    assert r.status_code == 303
    assert stored_rows(instance) == {"open_registration": True}
    assert visitor.get("/register").status_code == 200
    assert "the start-up setting is off" in text_of(admin.get("/admin").text)
    admin.post("/admin/settings/reset", {"setting": "open_registration"})
    assert visitor.get("/register").status_code == 403


def test_invalid_values_are_shown_next_to_their_field_and_change_nothing(app, instance):
    admin = admin_browser(app, instance)
    cases = [
        ({"instance_title": "   "}, "instance_title", "required"),
        ({"instance_title": "x" * 121}, "instance_title", "at most 120 characters"),
        ({"instance_title": "bad\u202etitle"}, "instance_title", "control and invisible"),
        ({"instance_description": "y" * 5001}, "instance_description", "at most 5000"),
        ({"instance_description": "bell\x07"}, "instance_description", "control and invisible"),
        ({"open_registration": "maybe"}, "open_registration", "choose on or off"),
    ]
    for change, field, message in cases:
        # A valid change next to the invalid one is not stored either.
        body = {**FORM, "federation_auto_accept": "", **change}
        r = admin.post("/admin/settings", body)
        assert r.status_code == 422, change
        errors = errors_of(r.text)
        assert list(errors) == [field], (change, errors)
        assert message in errors[field]
        assert f'aria-describedby="{field}-source {field}-error"' in r.text
        if field == "instance_title" and change[field].strip():
            # What was typed is shown again for correcting.
            assert 'value="' + change[field] + '"' in r.text
    assert stored_rows(instance) == {}
    assert audit(instance) == []
    # Posting without the title at all (a form that is not ours) is refused the same way.
    r = admin.post("/admin/settings", {})
    assert r.status_code == 422
    assert errors_of(r.text) == {"instance_title": "required"}
    assert stored_rows(instance) == {}


def test_a_markdown_description_keeps_its_lines(app, instance):
    admin = admin_browser(app, instance)
    text = "Line one\n\n- a\n- b\ttabbed"
    r = admin.post("/admin/settings", {**FORM, "instance_description": text.replace("\n", "\r\n")})
    assert r.status_code == 303
    assert stored_rows(instance)["instance_description"] == text
    home = Browser(app).get("/")
    assert "<li>a</li>" in home.text


def test_only_admins_with_the_form_token_change_settings(app, instance):
    make_user(instance, "mod", Role.moderator)
    make_user(instance, "member", Role.member)
    for name in ("mod", "member"):
        b = Browser(app)
        b.login(name)
        assert b.get("/admin").status_code == 403
        assert b.post("/admin/settings", {**FORM, "instance_title": "Mine"}).status_code == 403
        assert b.post("/admin/settings/reset", {"setting": "instance_title"}).status_code == 403
    anonymous = TestClient(app, base_url=BASE_URL, follow_redirects=False)
    r = anonymous.post("/admin/settings", data={**FORM, "instance_title": "Mine"})
    assert r.status_code == 401
    # An admin's session without the form's CSRF token (another site posting the form).
    admin = admin_browser(app, instance)
    admin.token = ""
    assert admin.post("/admin/settings", {**FORM, "instance_title": "Mine"}).status_code == 403
    admin.token = "x" * 43
    assert admin.post("/admin/settings", {**FORM, "instance_title": "Mine"}).status_code == 403
    assert admin.post("/admin/settings/reset", {"setting": "instance_title"}).status_code == 403
    assert stored_rows(instance) == {}
    assert audit(instance) == []
    assert values_of(instance).get("instance_title") == "A holdfast archive"


def test_the_service_checks_its_caller(app, instance):
    member = make_user(instance, "member", Role.member).account
    values = values_of(instance)
    for actor in (None, member):
        try:
            values.set(actor, {"instance_title": "Mine"})
        except (NotAuthenticated, PermissionDenied) as exc:
            assert exc.status == (401 if actor is None else 403)
        else:
            raise AssertionError("a non-admin changed a setting")
    try:
        values.set(make_user(instance, "root", Role.admin).account, {"secret_key": "x" * 40})
    except InvalidInput as exc:
        assert "secret_key" in exc.message
    else:
        raise AssertionError("an unknown setting was accepted")
    assert stored_rows(instance) == {}


def test_other_processes_see_a_change_once_their_cache_expires(app, instance):
    now = [1000.0]
    admin = make_user(instance, "root", Role.admin).account
    here = values_of(instance)
    elsewhere = InstanceValues(instance.db, instance.settings, clock=lambda: now[0])
    assert elsewhere.get("instance_title") == "A holdfast archive"
    here.set(admin, {"instance_title": "Renamed"})
    assert here.get("instance_title") == "Renamed"  # this process: at once
    now[0] += 4.0
    assert elsewhere.get("instance_title") == "A holdfast archive"  # still cached
    now[0] += 1.5
    assert elsewhere.get("instance_title") == "Renamed"


def test_an_unreadable_stored_value_falls_back_to_the_default(app, instance):
    with instance.db.write() as s:
        s.add(InstanceValue(key=KEY_PREFIX + "open_registration", value="{not json"))
        s.add(InstanceValue(key=KEY_PREFIX + "instance_title", value=json.dumps("")))
    fresh = InstanceValues(instance.db, instance.settings)
    assert fresh.get("open_registration") is True
    assert fresh.get("instance_title") == "A holdfast archive"
    # The one-time setup token shares the table and is neither shown nor touched.
    instance.accounts.create_setup_token()
    admin = admin_browser(app, instance)
    assert admin.post("/admin/settings", {**FORM, "instance_title": "New"}).status_code == 303
    assert admin.post("/admin/settings/reset", {"setting": "instance_title"}).status_code == 303
    assert "setup_token_hash" not in admin.get("/admin").text
    with instance.db.read() as s:
        assert s.get(InstanceValue, "setup_token_hash") is not None


def test_federation_documents_follow_the_run_time_settings(client, instance):
    boss = make_user(instance, "boss2", Role.admin)
    values = values_of(instance)
    values.set(
        boss.account,
        {"instance_title": "Tide gauge archive", "federation_auto_accept": False},
    )
    values.set(boss.account, {"open_registration": True})
    actor = client.get("/actor", headers={"Accept": "application/activity+json"}).json()
    assert actor["manuallyApprovesFollowers"] is True
    nodeinfo = client.get("/nodeinfo/2.1").json()
    assert nodeinfo["openRegistrations"] is True
    assert nodeinfo["metadata"]["nodeName"] == "Tide gauge archive"
    values.set(boss.account, {"open_registration": False, "federation_auto_accept": True})
    assert client.get("/nodeinfo/2.1").json()["openRegistrations"] is False
    actor = client.get("/actor", headers={"Accept": "application/activity+json"}).json()
    assert actor["manuallyApprovesFollowers"] is False
