"""Every web route, who may use it, and what everyone else gets.

ROUTES lists each page and feed route with the least role that may use it. A test
fails when the app has a web route that is not listed, so a new page cannot ship
without its permission being decided; the others check each route for an anonymous
visitor and for accounts of each role. (Which *items* a route shows to whom is
checked in test_visibility.)
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from holdfast.accounts.models import Role
from holdfast.moderation.models import ReportKind
from tests.instance.helpers import make_dataset, make_upload, make_user
from tests.routes import app_routes
from tests.web.helpers import BASE_URL, HTML

# (method, path) -> who may use it: "anyone", "account" (logged in), "submitter" (the
# account that submitted the item, or a moderator), "moderator", "admin", or "form"
# (anonymous forms: log in, register, first admin; they need the form cookie).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "anyone",
    ("GET", "/datasets"): "anyone",
    ("GET", "/search"): "anyone",
    ("GET", "/datasets/{slug}"): "anyone",
    ("GET", "/datasets/{slug}/history"): "anyone",
    ("GET", "/uploads/{infohash}"): "anyone",
    ("GET", "/tags"): "anyone",
    ("GET", "/tags/{name}"): "anyone",
    ("GET", "/accounts/{name}"): "anyone",
    ("GET", "/feeds/uploads.{fmt}"): "anyone",
    ("GET", "/feeds/needs-seeders.{fmt}"): "anyone",
    ("GET", "/feeds/tags/{tag}.{fmt}"): "anyone",
    ("GET", "/feeds/datasets/{slug}.{fmt}"): "anyone",
    ("GET", "/login"): "anyone",
    ("GET", "/register"): "anyone",
    ("GET", "/setup"): "anyone",
    ("POST", "/login"): "form",
    ("POST", "/register"): "form",
    ("POST", "/setup"): "form",
    ("POST", "/logout"): "anyone",  # ends the session if there is one
    ("GET", "/account"): "account",
    ("POST", "/account/tokens"): "account",
    ("POST", "/account/tokens/{token_id}/revoke"): "account",
    ("POST", "/account/sessions/end"): "account",
    ("GET", "/publish"): "account",
    ("POST", "/publish"): "account",
    ("GET", "/datasets/{slug}/edit"): "submitter",
    ("POST", "/datasets/{slug}/edit"): "submitter",
    ("POST", "/datasets/{slug}/parts"): "submitter",
    ("POST", "/report"): "account",
    ("GET", "/moderation"): "moderator",
    ("POST", "/moderation/decide"): "moderator",
    ("GET", "/moderation/reports"): "moderator",
    ("POST", "/moderation/reports/{report_id}"): "moderator",
    ("GET", "/moderation/audit"): "moderator",
    ("GET", "/admin"): "admin",
    ("POST", "/admin/accounts/{name}"): "admin",
    ("POST", "/admin/settings"): "admin",
    ("POST", "/admin/settings/reset"): "admin",
}
RANK = {"anonymous": 0, "member": 1, "moderator": 2, "admin": 3}
# The item here was submitted by another account, so "submitter" means a moderator.
NEEDS = {"anyone": 0, "form": 0, "account": 1, "submitter": 2, "moderator": 2, "admin": 3}


def web_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route outside the JSON API, static files and docs."""
    return {
        (r.method, r.path)
        for r in app_routes(app)
        if not r.path.startswith(("/api/", "/static", "/docs", "/.well-known", "/ap/"))
        and r.module.startswith("holdfast.web")
    }


def test_every_web_route_has_a_permission_rule(app):
    assert web_routes(app) == set(ROUTES)


@pytest.fixture
def world(app, instance, tmp_path):
    users = {
        "member": make_user(instance, "member", Role.member),
        "moderator": make_user(instance, "moderator", Role.moderator),
        "admin": make_user(instance, "admin", Role.admin),
    }
    owner = make_user(instance, "owner", Role.uploader)
    dataset = make_dataset(instance, owner, tags=["climate"])
    upload = make_upload(instance, owner, dataset.slug, tmp_path)
    report = instance.moderation.report(
        users["member"].account, "dataset", dataset.slug, kind=ReportKind.other, reason="x"
    )
    token, _plain = instance.accounts.create_token(users["member"].account, "t")
    values = {
        "slug": dataset.slug,
        "infohash": upload.infohash,
        "name": "climate",
        "tag": "climate",
        "fmt": "rss",
        "token_id": str(token.id),
        "report_id": str(report.id),
    }
    return users, values


def concrete(path: str, values: dict[str, str]) -> str:
    if path == "/accounts/{name}" or path == "/admin/accounts/{name}":
        return path.replace("{name}", "owner")
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    return path


def client_for(app, users, who):
    headers = dict(HTML)
    if who != "anonymous":
        # A bearer token: the same account checks as a session, without CSRF tokens.
        headers["authorization"] = f"Bearer {users[who].token}"
    return TestClient(app, base_url=BASE_URL, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("who", ["anonymous", "member", "moderator", "admin"])
def test_each_route_admits_exactly_its_roles(app, world, who):
    users, values = world
    c = client_for(app, users, who)
    for (method, path), needs in ROUTES.items():
        url = concrete(path, values)
        allowed = RANK[who] >= NEEDS[needs]
        if method == "GET":
            r = c.get(url)
            if allowed:
                assert r.status_code == 200, (who, method, path, r.status_code)
            elif who == "anonymous":
                assert r.status_code == 303, (who, method, path, r.status_code)
                assert r.headers["location"].startswith("/login?next=")
            else:
                assert r.status_code == 403, (who, method, path, r.status_code)
            continue
        # Posts with nothing in them: refused before any work when not allowed.
        r = c.post(url, data={})
        if needs == "form":
            if who == "anonymous":
                assert r.status_code == 403, (who, method, path)  # no form cookie
            else:  # a bearer token needs no form token; the empty form is refused
                assert r.status_code in (401, 403, 422), (who, method, path, r.status_code)
        elif not allowed:
            expected = 401 if who == "anonymous" else 403
            assert r.status_code == expected, (who, method, path, r.status_code)
        else:
            assert r.status_code not in (401, 403, 500), (who, method, path, r.status_code)
