"""Log in, register, the first admin, log out: forms, sessions and CSRF."""

from __future__ import annotations

from holdfast.accounts.models import Role
from holdfast.api.deps import SESSION_COOKIE
from holdfast.web.forms import FORM_COOKIE, safe_next
from tests.instance.helpers import PASSWORD, make_user
from tests.web.helpers import HTML, Browser, csrf_of, errors_of


def test_register_logs_in_and_later_forms_need_the_session_token(app, instance):
    b = Browser(app)
    page = b.get("/register")
    assert page.status_code == 200
    assert FORM_COOKIE in page.cookies
    r = b.post(
        "/register",
        {"name": "alice", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/account?welcome=1"
    assert SESSION_COOKIE in r.cookies
    account_page = b.get("/account")
    assert account_page.status_code == 200
    assert "alice" in account_page.text
    session_token = csrf_of(account_page.text)
    assert session_token != page.cookies[FORM_COOKIE]
    assert instance.accounts.get("alice").role == Role.member

    # A later form without the session's token is refused and changes nothing.
    r = b.client.post("/account/tokens", data={"name": "x"}, headers=HTML)
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert instance.accounts.list_tokens(instance.accounts.get("alice")) == []
    r = b.post("/account/tokens", {"name": "laptop"})
    assert r.status_code == 200
    assert "hf_" in r.text
    assert len(instance.accounts.list_tokens(instance.accounts.get("alice"))) == 1


def test_register_errors_are_shown_next_to_fields_and_create_nothing(app, instance):
    b = Browser(app)
    b.get("/register")
    r = b.post("/register", {"name": "A!", "password": "short", "password_again": "short"})
    assert r.status_code == 422
    assert "name" in errors_of(r.text)
    assert instance.accounts.list()[1] == 0

    r = b.post("/register", {"name": "bob", "password": PASSWORD, "password_again": "different1"})
    assert r.status_code == 422
    assert errors_of(r.text) == {"password_again": "does not match"}
    assert 'value="bob"' in r.text  # what was typed is kept
    assert instance.accounts.list()[1] == 0

    make_user(instance, "carol")
    r = b.post("/register", {"name": "carol", "password": PASSWORD, "password_again": PASSWORD})
    assert r.status_code == 409
    assert errors_of(r.text) == {"name": "taken"}


def test_anonymous_forms_need_the_double_submit_token(app, instance):
    make_user(instance, "dave")
    b = Browser(app)
    b.get("/login")
    # Another site cannot read our cookie, so it cannot post the matching token.
    r = b.client.post(
        "/login", data={"name": "dave", "password": PASSWORD, "csrf_token": "guess" * 5}
    )
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.cookies
    fresh = Browser(app)
    r = fresh.client.post("/login", data={"name": "dave", "password": PASSWORD}, headers=HTML)
    assert r.status_code == 403


def test_login_wrong_password_then_right_and_logout(app, instance):
    make_user(instance, "erin")
    b = Browser(app)
    b.get("/login?next=/datasets")
    r = b.post("/login", {"name": "erin", "password": "wrong password!", "next": "/datasets"})
    assert r.status_code == 401
    assert errors_of(r.text) == {"password": "wrong name or password"}
    assert SESSION_COOKIE not in r.cookies
    r = b.post("/login", {"name": "erin", "password": PASSWORD, "next": "/datasets"})
    assert r.status_code == 303
    assert r.headers["location"] == "/datasets"
    cookie = r.cookies[SESSION_COOKIE]
    assert instance.accounts.session_for(cookie) is not None
    b.get("/datasets")
    r = b.post("/logout")
    assert r.status_code == 303
    assert instance.accounts.session_for(cookie) is None
    assert b.get("/account").status_code == 303  # back to the login page


def test_logout_needs_the_csrf_token(app, instance):
    make_user(instance, "frank")
    b = Browser(app)
    b.login("frank")
    cookie = b.client.cookies[SESSION_COOKIE]
    r = b.client.post("/logout", headers=HTML)
    assert r.status_code == 403
    assert instance.accounts.session_for(cookie) is not None


def test_login_is_rate_limited(make_settings):
    from holdfast.app import create_app

    app = create_app(make_settings(auth_rate_limit=2))
    make_user(app.state.instance, "gina")
    b = Browser(app)
    b.get("/login")
    for _ in range(2):
        assert b.post("/login", {"name": "gina", "password": "wrong password"}).status_code == 401
    r = b.post("/login", {"name": "gina", "password": PASSWORD})
    assert r.status_code == 429
    assert "Retry-After" in r.headers
    assert SESSION_COOKIE not in r.cookies


def test_next_never_leaves_the_site():
    assert safe_next("/datasets?page=2") == "/datasets?page=2"
    for bad in (
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "",
        None,
        "javascript:x",
    ):
        assert safe_next(bad) == "/"


def test_pages_that_need_a_login_redirect_to_it(client):
    for path in ("/publish", "/account", "/moderation", "/admin"):
        r = client.get(path, headers=HTML, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")


def test_first_admin_setup_page(app, instance):
    token = instance.accounts.create_setup_token()
    b = Browser(app)
    page = b.get(f"/setup?token={token}")
    assert page.status_code == 200
    assert f'value="{token}"' in page.text
    r = b.post(
        "/setup",
        {"token": "wrong", "name": "root", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert r.status_code == 403
    assert not instance.accounts.has_admin()
    r = b.post(
        "/setup",
        {"token": token, "name": "root", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/admin"
    assert instance.accounts.get("root").role == Role.admin
    assert b.get("/admin").status_code == 200
    # The link works once.
    other = Browser(app)
    other.get(f"/setup?token={token}")
    r = other.post(
        "/setup",
        {"token": token, "name": "root2", "password": PASSWORD, "password_again": PASSWORD},
    )
    assert r.status_code == 403
    assert "already used" in r.text


def test_closed_registration(make_settings):
    from holdfast.app import create_app

    app = create_app(make_settings(open_registration=False))
    b = Browser(app)
    assert b.get("/register").status_code == 403
    assert "Register" not in b.get("/login").text.split("<main")[0]


def test_log_out_everywhere(app, instance):
    make_user(instance, "hana")
    one, two = Browser(app), Browser(app)
    one.login("hana")
    two.login("hana")
    r = one.post("/account/sessions/end")
    assert r.status_code == 303
    assert two.get("/account").status_code == 303


def test_api_tokens_created_and_revoked_from_the_account_page(app, instance):
    user = make_user(instance, "ivan")
    b = Browser(app)
    b.login("ivan")
    r = b.post("/account/tokens", {"name": "script"})
    plain = r.text.split('<code id="new-token">')[1].split("</code>")[0]
    assert instance.accounts.account_for_token(plain).name == "ivan"
    token_id = next(t.id for t in instance.accounts.list_tokens(user.account) if t.name == "script")
    assert b.post(f"/account/tokens/{token_id}/revoke").status_code == 303
    assert instance.accounts.account_for_token(plain) is None
