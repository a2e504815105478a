"""Request dependencies: the instance, the caller's account, permission checks, paging.

A route's signature states its contract: `actor: RequireAccount` means "logged in",
`actor: RequireModerator` means "a moderator", `viewer: CurrentAccount` means
"anyone; permissions are checked by the service against this account".
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from holdfast.accounts.models import Account, Role
from holdfast.errors import NotAuthenticated, PermissionDenied
from holdfast.instance import Instance

SESSION_COOKIE = "holdfast_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_instance(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


InstanceDep = Annotated[Instance, Depends(get_instance)]


@dataclass
class Caller:
    account: Account | None
    via: str  # "token", "session" or "anonymous"
    csrf_token: str | None = None


async def get_caller(request: Request) -> Caller:
    """Who is calling: a bearer token, a session cookie, or nobody.

    Cookie-authenticated requests that change things must carry the session's CSRF
    token (header or form field); token-authenticated ones need not, because a
    browser never sends a bearer token on its own.
    """
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    instance = get_instance(request)
    caller = Caller(None, "anonymous")
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
        account = await run_in_threadpool(instance.accounts.account_for_token, token.strip())
        if account is None:
            raise NotAuthenticated("this API token is invalid or revoked")
        caller = Caller(account, "token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            session = await run_in_threadpool(instance.accounts.session_for, cookie)
            if session is not None:
                caller = Caller(session.account, "session", session.csrf_token)
                if request.method not in SAFE_METHODS:
                    await check_csrf(request, session.csrf_token)
    request.state.caller = caller
    return caller


async def check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        raise PermissionDenied("missing or wrong CSRF token; reload the page and try again")


CallerDep = Annotated[Caller, Depends(get_caller)]


async def current_account(caller: CallerDep) -> Account | None:
    return caller.account


async def require_account(caller: CallerDep) -> Account:
    if caller.account is None:
        raise NotAuthenticated("log in or send an API token")
    return caller.account


def require_role(role: Role) -> object:
    async def dependency(caller: CallerDep) -> Account:
        account = await require_account(caller)
        if not account.has_role(role):
            raise PermissionDenied(f"this needs the {role.value} role")
        return account

    return Depends(dependency)


CurrentAccount = Annotated[Account | None, Depends(current_account)]
RequireAccount = Annotated[Account, Depends(require_account)]
RequireModerator = Annotated[Account, require_role(Role.moderator)]
RequireAdmin = Annotated[Account, require_role(Role.admin)]


@dataclass
class Paging:
    offset: int
    limit: int


def paging(
    page: Annotated[int, Query(ge=1, le=100_000, description="Page number, from 1.")] = 1,
    per_page: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
) -> Paging:
    return Paging(offset=(page - 1) * per_page, limit=per_page)


PagingDep = Annotated[Paging, Depends(paging)]
