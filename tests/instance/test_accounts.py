"""Accounts: argon2 hashes, revocable sessions, hashed tokens, CSRF, rate limits, setup."""

from __future__ import annotations

from sqlalchemy import select

from holdfast.accounts.models import Account, ApiToken, LoginSession, Role
from holdfast.accounts.service import hash_secret
from tests.instance.helpers import PASSWORD, make_user


def register(client, name="reader", password=PASSWORD):
    return client.post("/api/v1/auth/register", json={"name": name, "password": password})


def test_register_stores_an_argon2_hash_and_logs_in(client, instance):
    r = register(client)
    assert r.status_code == 201
    assert r.json()["account"]["role"] == "member"
    with instance.db.read() as s:
        account = s.scalar(select(Account).where(Account.name == "reader"))
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert client.get("/api/v1/account").json()["name"] == "reader"


def test_bad_registrations_are_refused(client):
    assert register(client, password="short").status_code == 422
    assert register(client, name="No Spaces!").status_code == 422
    assert register(client).status_code == 201
    again = register(client)
    assert again.status_code == 409 and again.json()["fields"] == {"name": "taken"}


def test_login_logout_and_session_revocation(client, instance):
    make_user(instance, "carol")
    r = client.post("/api/v1/auth/login", json={"name": "carol", "password": PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    cookie = client.cookies.get("holdfast_session")
    with instance.db.read() as s:
        stored = s.scalars(select(LoginSession.token_hash)).all()
    assert hash_secret(cookie) in stored and cookie not in stored
    assert client.get("/api/v1/account").status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.set("holdfast_session", cookie)  # a stolen copy of the old cookie
    assert client.get("/api/v1/account").status_code == 401


def test_wrong_password_and_unknown_account_look_the_same(client, instance):
    make_user(instance, "dave")
    a = client.post("/api/v1/auth/login", json={"name": "dave", "password": "wrong password!"})
    b = client.post("/api/v1/auth/login", json={"name": "nobody", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_login_is_rate_limited(make_settings):
    from fastapi.testclient import TestClient

    from holdfast.app import create_app

    app = create_app(make_settings(auth_rate_limit=3))
    make_user(app.state.instance, "erin")
    with TestClient(app) as client:
        codes = [
            client.post(
                "/api/v1/auth/login", json={"name": "erin", "password": "nope nope nope"}
            ).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # Even the right password waits until the window passes.
        r = client.post("/api/v1/auth/login", json={"name": "erin", "password": PASSWORD})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0


def test_cookie_requests_that_change_things_need_the_csrf_token(client):
    register(client)
    no_token = client.post("/api/v1/datasets", json={"title": "Forged"})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["error"]
    wrong = client.post("/api/v1/datasets", json={"title": "Forged"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    assert client.get("/api/v1/datasets").json()["total"] == 0


def test_csrf_token_from_login_is_accepted(client):
    csrf = register(client).json()["csrf_token"]
    r = client.post("/api/v1/datasets", json={"title": "Real"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201


def test_api_tokens_are_hashed_and_revocable(client, instance):
    csrf = register(client).json()["csrf_token"]
    r = client.post(
        "/api/v1/account/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201
    token = r.json()["token"]
    with instance.db.read() as s:
        hashes = s.scalars(select(ApiToken.token_hash)).all()
    assert hash_secret(token) in hashes and token not in hashes
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/account", headers=bearer).json()["name"] == "reader"
    listed = client.get("/api/v1/account/tokens", headers=bearer).json()
    assert [t["name"] for t in listed] == ["script"] and listed[0]["token"] is None
    assert (
        client.delete(f"/api/v1/account/tokens/{r.json()['id']}", headers=bearer).status_code == 200
    )
    assert client.get("/api/v1/account", headers=bearer).status_code == 401


def test_malformed_authorization_is_refused(client):
    for value in ("Basic abc", "Bearer", "Bearer hf_notatoken", "Bearer " + "x" * 5000):
        r = client.get("/api/v1/account", headers={"Authorization": value})
        assert r.status_code == 401, value


def test_first_admin_setup_link_works_once(client, instance):
    token = instance.accounts.create_setup_token()
    body = {"token": token, "name": "root", "password": PASSWORD}
    assert client.post("/api/v1/auth/setup", json=body | {"token": "wrong"}).status_code == 403
    r = client.post("/api/v1/auth/setup", json=body)
    assert r.status_code == 201 and r.json()["account"]["role"] == "admin"
    again = client.post("/api/v1/auth/setup", json=body | {"name": "root2"})
    assert again.status_code == 403
    assert instance.accounts.has_admin()


def test_disabling_an_account_ends_its_sessions(client, instance):
    admin = make_user(instance, "admin", Role.admin)
    register(client, "victim")
    assert client.get("/api/v1/account").status_code == 200
    r = client.patch("/api/v1/accounts/victim", json={"disabled": True}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.get("/api/v1/account").status_code == 401
    audit = client.get("/api/v1/moderation/audit", headers=admin.headers).json()["items"]
    assert audit[0]["action"] == "account.update"
