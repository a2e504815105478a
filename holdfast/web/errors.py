"""Error pages: what a browser sees when a page or form request fails.

The API's error handlers call `render_error` for requests that accept HTML, so a
domain error raised anywhere (NotFound, Gone, PermissionDenied...) becomes a page
with the same message the JSON envelope would carry.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from holdfast.web.rendering import PAGE_HEADERS, Pages, query_string

log = logging.getLogger("holdfast.web")

HEADINGS = {
    400: "Bad request",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Already exists",
    410: "Removed",
    413: "Too large",
    422: "Check what you entered",
    429: "Too many attempts",
    500: "Something went wrong",
}


def render_error(
    pages: Pages,
    request: Request,
    status: int,
    message: str,
    fields: dict[str, str],
    headers: dict[str, str],
) -> Response:
    caller = getattr(request.state, "caller", None)
    account = caller.account if caller is not None else None
    if status == 401 and account is None and request.method in ("GET", "HEAD"):
        # A page that needs a login sends the visitor to log in, and back after.
        query = request.url.query
        back = request.url.path + ("?" + query if query else "")
        return RedirectResponse("/login" + query_string(next=back), status_code=303)
    context: dict[str, Any] = {
        "viewer": account,
        "csrf_token": (caller.csrf_token if caller is not None else None) or "",
        "status": status,
        "heading": HEADINGS.get(status, "Error"),
        "message": message,
        "errors": fields,
    }
    try:
        return pages.render(request, "error.html", context, status=status, headers=headers)
    except Exception:  # an error page must never fail: fall back to plain HTML
        log.exception("rendering the error page failed")
        response = HTMLResponse(
            "<!doctype html><title>Error</title><h1>Error</h1><p>Something went wrong.</p>",
            status_code=status,
            headers=headers,
        )
        response.headers.update(PAGE_HEADERS)
        return response


def error_renderer(pages: Pages) -> Any:
    return partial(render_error, pages)
