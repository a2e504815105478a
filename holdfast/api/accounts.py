"""Accounts API: register, log in and out, the first admin, API tokens, roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from holdfast.accounts.instance_values import values_of
from holdfast.accounts.models import Account, Role
from holdfast.api.deps import (
    SESSION_COOKIE,
    CallerDep,
    InstanceDep,
    PagingDep,
    RequireAccount,
    RequireAdmin,
)
from holdfast.api.schemas import (
    AccountOut,
    Ok,
    PageOut,
    TokenOut,
    account_out,
    page_out,
    token_out,
)
from holdfast.catalogue.schemas import NoNul
from holdfast.errors import PermissionDenied
from holdfast.instance import Instance

router = APIRouter(tags=["accounts"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Registration(Credentials):
    display_name: str = Field(default="", max_length=100)


class Setup(Credentials):
    token: str = Field(max_length=200, description="The one-time token from the setup link.")


class LoginOut(BaseModel):
    ok: bool = True
    account: AccountOut
    csrf_token: str = Field(description="Send as X-CSRF-Token with cookie-authenticated changes.")


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=100), NoNul] = ""


class AccountChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    trusted: bool | None = None
    disabled: bool | None = None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def set_session_cookie(response: Response, instance: Instance, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=instance.settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=instance.base_url.startswith("https://"),
        path="/",
    )


def login_response(
    instance: Instance, request: Request, response: Response, account: Account
) -> LoginOut:
    token, csrf = instance.accounts.start_session(
        account, user_agent=request.headers.get("user-agent", "")
    )
    set_session_cookie(response, instance, token)
    return LoginOut(account=account_out(account), csrf_token=csrf)


@router.post("/auth/register", response_model=LoginOut, status_code=201)
def register(
    body: Registration, request: Request, response: Response, instance: InstanceDep
) -> LoginOut:
    """Create an account and log in. New accounts are members; what they submit is reviewed."""
    if not values_of(instance).current().open_registration:
        raise PermissionDenied("registration is closed on this instance")
    instance.accounts.limiter.check(f"register:{client_address(request)}")
    account = instance.accounts.register(body.name, body.password, display_name=body.display_name)
    instance.accounts.limiter.hit(f"register:{client_address(request)}")
    return login_response(instance, request, response, account)


@router.post("/auth/setup", response_model=LoginOut, status_code=201)
def setup(body: Setup, request: Request, response: Response, instance: InstanceDep) -> LoginOut:
    """Create the first admin with the one-time token printed by `holdfast serve`."""
    instance.accounts.limiter.check(f"setup:{client_address(request)}")
    try:
        account = instance.accounts.register_first_admin(body.token, body.name, body.password)
    except PermissionDenied:
        instance.accounts.limiter.hit(f"setup:{client_address(request)}")
        raise
    return login_response(instance, request, response, account)


@router.post("/auth/login", response_model=LoginOut)
def login(
    body: Credentials, request: Request, response: Response, instance: InstanceDep
) -> LoginOut:
    account = instance.accounts.authenticate(
        body.name, body.password, address=client_address(request)
    )
    return login_response(instance, request, response, account)


@router.post("/auth/logout", response_model=Ok)
def logout(request: Request, response: Response, caller: CallerDep, instance: InstanceDep) -> Ok:
    """End this login session (the cookie's). API tokens are revoked separately."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and caller.via == "session":
        instance.accounts.end_session(cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return Ok()


@router.get("/account", response_model=AccountOut)
def me(actor: RequireAccount) -> AccountOut:
    return account_out(actor)


@router.get("/account/tokens", response_model=list[TokenOut])
def list_tokens(actor: RequireAccount, instance: InstanceDep) -> list[TokenOut]:
    return [token_out(t) for t in instance.accounts.list_tokens(actor)]


@router.post("/account/tokens", response_model=TokenOut, status_code=201)
def create_token(
    actor: RequireAccount, instance: InstanceDep, body: Annotated[NewToken, Body()]
) -> TokenOut:
    """A new API token, shown once. Send it as `Authorization: Bearer <token>`."""
    row, plain = instance.accounts.create_token(actor, body.name)
    return token_out(row, plain)


@router.delete("/account/tokens/{token_id}", response_model=Ok)
def revoke_token(token_id: int, actor: RequireAccount, instance: InstanceDep) -> Ok:
    instance.accounts.revoke_token(actor, token_id)
    return Ok()


@router.get("/accounts", response_model=PageOut[AccountOut])
def list_accounts(
    actor: RequireAdmin, instance: InstanceDep, paging: PagingDep
) -> dict[str, object]:
    rows, total = instance.accounts.list(offset=paging.offset, limit=paging.limit)
    return page_out([account_out(a) for a in rows], total, paging.offset, paging.limit)


@router.get("/accounts/{name}", response_model=AccountOut)
def get_account(name: str, instance: InstanceDep) -> AccountOut:
    return account_out(instance.accounts.get(name))


@router.patch("/accounts/{name}", response_model=AccountOut)
def change_account(
    name: str, body: AccountChange, actor: RequireAdmin, instance: InstanceDep
) -> AccountOut:
    """Change an account's role, trust or disabled state (admins only; audited)."""
    account = instance.accounts.set_role(
        actor, name, role=body.role, trusted=body.trusted, disabled=body.disabled
    )
    return account_out(account)
