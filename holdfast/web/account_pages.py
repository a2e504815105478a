"""Account pages: log in, register, the first admin, log out, one's account, profiles.

Logging in (or registering, or setting up the first admin) starts the same
server-side session the API uses, with the same cookie; later forms post the
session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from holdfast.accounts.instance_values import values_of
from holdfast.accounts.models import Account
from holdfast.api.accounts import client_address, set_session_cookie
from holdfast.api.deps import SESSION_COOKIE, CallerDep, InstanceDep
from holdfast.errors import (
    Conflict,
    HoldfastError,
    InvalidInput,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
)
from holdfast.instance import Instance
from holdfast.web.forms import (
    AccountDep,
    PagesDep,
    Visitor,
    VisitorDep,
    check_form_token,
    render_page,
    safe_next,
    see_other,
)
from holdfast.web.rendering import Pages

router = APIRouter(include_in_schema=False)

ShortField = Annotated[str, Form(max_length=200)]
PasswordField = Annotated[str, Form(max_length=1024)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def _logged_in(request: Request, instance: Instance, account: Account, next_url: str) -> Response:
    token, _csrf = instance.accounts.start_session(
        account, user_agent=request.headers.get("user-agent", "")
    )
    response = see_other(safe_next(next_url))
    set_session_cookie(response, instance, token)
    return response


def _blank_form(
    request: Request, pages: Pages, visitor: Visitor, template: str, values: dict[str, str]
) -> Response:
    return render_page(
        request, pages, visitor, template, {"values": values, "message": ""}, anonymous_form=True
    )


def _check_passwords(password: str, password_again: str) -> None:
    if password != password_again:
        raise InvalidInput("the two passwords differ", fields={"password_again": "does not match"})


def _logged_out() -> Response:
    response = see_other("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _form_error(
    request: Request,
    pages: Pages,
    visitor: Visitor,
    template: str,
    exc: HoldfastError,
    values: dict[str, str],
) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return render_page(
        request,
        pages,
        visitor,
        template,
        {"errors": exc.fields, "message": exc.message, "values": values},
        status=exc.status,
        headers=headers,
        anonymous_form=True,
    )


# --------------------------------------------------------------------------- log in


@router.get("/login")
def login_form(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> Response:
    return _blank_form(request, pages, visitor, "login.html", {"name": "", "next": safe_next(next)})


@router.post("/login")
def login_submit(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    name: ShortField = "",
    password: PasswordField = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf_token: ShortField = "",
) -> Response:
    check_form_token(request, visitor, csrf_token)
    values = {"name": name, "next": safe_next(next)}
    try:
        account = instance.accounts.authenticate(name, password, address=client_address(request))
    except (NotAuthenticated, RateLimited) as exc:
        if isinstance(exc, NotAuthenticated):
            exc.fields = {"password": "wrong name or password"}
        return _form_error(request, pages, visitor, "login.html", exc, values)
    return _logged_in(request, instance, account, next)


# ------------------------------------------------------------------------ register


@router.get("/register")
def register_form(
    request: Request, visitor: VisitorDep, pages: PagesDep, instance: InstanceDep
) -> Response:
    if not values_of(instance).current().open_registration:
        raise PermissionDenied("registration is closed on this instance")
    return _blank_form(request, pages, visitor, "register.html", {"name": "", "display_name": ""})


@router.post("/register")
def register_submit(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    name: ShortField = "",
    display_name: ShortField = "",
    password: PasswordField = "",
    password_again: PasswordField = "",
    csrf_token: ShortField = "",
) -> Response:
    check_form_token(request, visitor, csrf_token)
    if not values_of(instance).current().open_registration:
        raise PermissionDenied("registration is closed on this instance")
    values = {"name": name, "display_name": display_name}
    limit_key = f"register:{client_address(request)}"
    try:
        instance.accounts.limiter.check(limit_key)
        _check_passwords(password, password_again)
        account = instance.accounts.register(name, password, display_name=display_name)
    except (InvalidInput, Conflict, RateLimited) as exc:
        return _form_error(request, pages, visitor, "register.html", exc, values)
    instance.accounts.limiter.hit(limit_key)
    return _logged_in(request, instance, account, "/account?welcome=1")


# --------------------------------------------------------------------- first admin


@router.get("/setup")
def setup_form(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    token: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    return _blank_form(request, pages, visitor, "setup.html", {"name": "", "token": token})


@router.post("/setup")
def setup_submit(
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    token: ShortField = "",
    name: ShortField = "",
    password: PasswordField = "",
    password_again: PasswordField = "",
    csrf_token: ShortField = "",
) -> Response:
    check_form_token(request, visitor, csrf_token)
    values = {"name": name, "token": token}
    limit_key = f"setup:{client_address(request)}"
    try:
        instance.accounts.limiter.check(limit_key)
        _check_passwords(password, password_again)
        account = instance.accounts.register_first_admin(token, name, password)
    except PermissionDenied as exc:
        instance.accounts.limiter.hit(limit_key)
        return _form_error(request, pages, visitor, "setup.html", exc, values)
    except (InvalidInput, Conflict, RateLimited) as exc:
        return _form_error(request, pages, visitor, "setup.html", exc, values)
    return _logged_in(request, instance, account, "/admin")


# -------------------------------------------------------------------------- log out


@router.post("/logout")
def logout(request: Request, caller: CallerDep, instance: InstanceDep) -> Response:
    """End this browser's session. The CSRF token was checked by get_caller."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and caller.via == "session":
        instance.accounts.end_session(cookie)
    return _logged_out()


# ------------------------------------------------------------------ one's account


@router.get("/account")
def my_account(
    account: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    welcome: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    return _account_page(request, visitor, pages, instance, account, welcome=bool(welcome))


def _account_page(
    request: Request,
    visitor: Visitor,
    pages: Pages,
    instance: Instance,
    account: Account,
    *,
    welcome: bool = False,
    new_token: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    tokens = instance.accounts.list_tokens(account)
    datasets = instance.catalogue.list_datasets(account, account_id=account.id, limit=20)
    return render_page(
        request,
        pages,
        visitor,
        "my_account.html",
        {
            "account": account,
            "tokens": tokens,
            "datasets": datasets,
            "welcome": welcome,
            "new_token": new_token,
            "errors": errors or {},
        },
        status=status,
        headers={"Cache-Control": "no-store"},
    )


@router.post("/account/tokens")
def create_token(
    account: AccountDep,
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A new API token, shown on the page this once."""
    _row, plain = instance.accounts.create_token(account, name)
    return _account_page(request, visitor, pages, instance, account, new_token=plain)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    token_id: Annotated[int, Path(ge=1)], account: AccountDep, instance: InstanceDep
) -> Response:
    instance.accounts.revoke_token(account, token_id)
    return see_other("/account#tokens")


@router.post("/account/sessions/end")
def end_sessions(account: AccountDep, instance: InstanceDep) -> Response:
    """Log out everywhere: every browser session of this account ends."""
    instance.accounts.end_all_sessions(account.id)
    return _logged_out()


# ------------------------------------------------------------------------ profiles


@router.get("/accounts/{name}")
def profile(
    name: Annotated[str, Path(max_length=64)],
    request: Request,
    visitor: VisitorDep,
    pages: PagesDep,
    instance: InstanceDep,
    page: PageNumber = 1,
) -> Response:
    account = instance.accounts.get(name)
    per_page = 25
    datasets = instance.catalogue.list_datasets(
        visitor.account, account_id=account.id, offset=(page - 1) * per_page, limit=per_page
    )
    return render_page(
        request,
        pages,
        visitor,
        "profile.html",
        {"account": account, "datasets": datasets, "params": {}},
    )
