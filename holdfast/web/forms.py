"""What every page needs to know about its visitor, and the helpers forms share.

Logged-in forms post the login session's CSRF token as `csrf_token`; the API's
`get_caller` checks it before any route runs. Forms shown before there is a session
(log in, register, first admin) post a random token that must equal the
`holdfast_form` cookie set when the form was shown (a double-submit token), so
another site cannot log a visitor into an account of its choosing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from holdfast.accounts.models import Account, Role
from holdfast.api.deps import CallerDep
from holdfast.errors import NotAuthenticated, PermissionDenied
from holdfast.web.rendering import Pages

FORM_COOKIE = "holdfast_form"


@dataclass
class Visitor:
    """The account looking at a page (or None) and the token its forms must post."""

    account: Account | None
    csrf_token: str
    new_form_cookie: str | None = None

    @property
    def is_moderator(self) -> bool:
        return self.account is not None and self.account.has_role(Role.moderator)

    @property
    def is_admin(self) -> bool:
        return self.account is not None and self.account.has_role(Role.admin)


async def get_visitor(request: Request, caller: CallerDep) -> Visitor:
    if caller.csrf_token:
        return Visitor(caller.account, caller.csrf_token)
    if caller.account is not None:
        # A bearer token: no cookie, so no CSRF risk and no token to post.
        return Visitor(caller.account, "")
    existing = request.cookies.get(FORM_COOKIE, "")
    if 20 <= len(existing) <= 100 and existing.isascii():
        return Visitor(None, existing)
    token = secrets.token_urlsafe(24)
    return Visitor(None, token, new_form_cookie=token)


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def get_pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


PagesDep = Annotated[Pages, Depends(get_pages)]


def check_form_token(request: Request, visitor: Visitor, sent: str) -> None:
    """For forms posted without a login session: the double-submit token must match."""
    if visitor.account is not None:
        return  # a session's CSRF token was already checked by get_caller
    cookie = request.cookies.get(FORM_COOKIE, "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise PermissionDenied(
            "this form has expired or cookies are blocked; reload the page and try again"
        )


def finish(response: Response, visitor: Visitor, *, secure: bool) -> Response:
    """Set the form cookie on a response when the visitor did not have one yet."""
    if visitor.new_form_cookie:
        response.set_cookie(
            FORM_COOKIE,
            visitor.new_form_cookie,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
    return response


def safe_next(value: str | None) -> str:
    """A local path to go to after logging in; anything else becomes '/'."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\t\\") or len(value) > 2000:
        return "/"
    return value


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def validation_fields(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors keyed by the form field they belong to ('tags.2' -> 'tags'),
    worded for people rather than programmers."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        loc = error.get("loc") or ("form",)
        name = str(loc[0])
        message = friendly_message(error)
        if len(loc) > 1 and isinstance(loc[1], int):
            message = f"item {loc[1] + 1}: {message}"
        fields.setdefault(name, message)
    return fields


def friendly_message(error: Any) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "required"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items"
    if kind == "string_pattern_mismatch":
        return "lowercase letters, digits and -, starting with a letter or digit"
    if kind == "enum":
        return f"choose one of {ctx.get('expected', 'the listed values')}"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def split_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_commas(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


def render_page(
    request: Request,
    pages: Pages,
    visitor: Visitor,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    anonymous_form: bool = False,
) -> Response:
    """Render a page for this visitor.

    `anonymous_form` pages (log in, register, first admin) set the double-submit
    cookie their form token must match; other pages set no cookie at all.
    """
    values: dict[str, Any] = {
        "viewer": visitor.account,
        "visitor": visitor,
        "csrf_token": visitor.csrf_token,
        "htmx": request.headers.get("hx-request") == "true",
        "errors": {},
    }
    values.update(context or {})
    response = pages.render(request, name, values, status=status, headers=headers)
    if anonymous_form:
        finish(response, visitor, secure=pages.instance.base_url.startswith("https://"))
    return response


async def _logged_in(visitor: VisitorDep) -> Account:
    if visitor.account is None:
        raise NotAuthenticated("log in to see this page")
    return visitor.account


async def _moderator(account: Annotated[Account, Depends(_logged_in)]) -> Account:
    if not account.has_role(Role.moderator):
        raise PermissionDenied("only moderators can do this")
    return account


async def _admin(account: Annotated[Account, Depends(_logged_in)]) -> Account:
    if not account.has_role(Role.admin):
        raise PermissionDenied("only admins can do this")
    return account


# A route's signature states who may use it. These are checked before the form is
# read, so a visitor without the right gets 401/403, never a form error.
AccountDep = Annotated[Account, Depends(_logged_in)]
ModeratorDep = Annotated[Account, Depends(_moderator)]
AdminDep = Annotated[Account, Depends(_admin)]
