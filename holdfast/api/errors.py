"""One error envelope for every JSON error: {"ok": false, "error": "...", "status": N}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from holdfast.errors import HoldfastError, RateLimited

log = logging.getLogger("holdfast")


def envelope(status: int, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": message, "status": status}
    body.update({k: v for k, v in extra.items() if v})
    return body


def wants_html(request: Request) -> bool:
    if request.url.path.startswith(("/api/", "/.well-known/", "/ap/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def error_response(request: Request, status: int, message: str, **extra: Any) -> Response:
    headers: dict[str, str] = extra.pop("headers", None) or {}
    html = request.app.state.render_error if wants_html(request) else None
    if html is not None:
        return html(request, status, message, extra.get("fields") or {}, headers)
    return JSONResponse(envelope(status, message, **extra), status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form", "header")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    app.state.render_error = None

    @app.exception_handler(HoldfastError)
    async def _domain(request: Request, exc: HoldfastError) -> Response:
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(request, exc.status, exc.message, fields=exc.fields, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        fields: dict[str, str] = {}
        for err in exc.errors():
            fields.setdefault(_field_name(tuple(err.get("loc", ()))), str(err.get("msg", "")))
        summary = "; ".join(f"{k}: {v}" for k, v in list(fields.items())[:5])
        return error_response(request, 422, f"invalid request: {summary}", fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such page"
        return error_response(request, exc.status_code, message, headers=exc.headers or {})

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        # A value the database cannot store (e.g. NUL in PostgreSQL text) that no
        # validator caught: the transaction was rolled back, so nothing changed.
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
        return error_response(request, 422, "the request holds a value that cannot be stored")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; it has been logged")
