"""Templates, filters, static files and the headers every page carries."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from holdfast import __version__
from holdfast.accounts.instance_values import values_of
from holdfast.accounts.models import Role
from holdfast.instance import Instance

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

# Scripts and styles come only from our own /static; the embedded JSON-LD is a data
# block, which CSP does not execute. HTMX is configured (see base.html) not to inject
# styles or evaluate code, so this policy holds with it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def filesize(value: int | None) -> str:
    """1536 -> '1.5 KiB'; sizes people read, in binary units as clients show them."""
    if value is None:
        return "unknown"
    size = float(value)
    for unit in UNITS:
        if abs(size) < 1024 or unit == UNITS[-1]:
            if unit == "B":
                return f"{int(size)} B"
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover - the loop always returns


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def json_script(value: Any) -> Markup:
    """JSON safe to place inside a <script> element: no '<', '>' or '&' survive."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above for the script context


class CachedStaticFiles(StaticFiles):
    """Static files with long caching: their URLs carry a content hash (`?v=`)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        scope: Scope = args[2] if len(args) > 2 else kwargs["scope"]
        if b"v=" in scope.get("query_string", b""):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _static_versions() -> dict[str, str]:
    versions = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            versions[path.relative_to(STATIC_DIR).as_posix()] = digest
    return versions


class Pages:
    """The template environment of one app and the helpers routes render with."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            filesize=filesize,
            datetime=format_datetime,
            date=format_date,
            iso=iso,
            json_script=json_script,
        )
        self.env.tests["web_url"] = is_web_url
        self._versions = _static_versions()
        settings = instance.settings
        self.env.globals.update(
            static=self.static_url,
            instance_name=settings.instance_name,
            version=__version__,
            Role=Role,
            query=query_string,
        )

    def compile_all(self) -> None:
        """Compile every template now, so no visitor waits for it on a first request."""
        for name in self.env.list_templates(extensions=["html"]):
            self.env.get_template(name)

    def static_url(self, name: str) -> str:
        version = self._versions.get(name)
        if version is None:
            raise KeyError(f"no static file {name}")
        return f"/static/{name}?v={version}"

    def render_text(self, name: str, context: dict[str, Any]) -> str:
        # Settings an admin may change while the server runs are read per render
        # (from a short cache), not fixed when the templates were loaded.
        current = values_of(self.instance).current()
        context.setdefault("instance_title", current.instance_title)
        context.setdefault("instance_description_html", current.description_html)
        context.setdefault("open_registration", current.open_registration)
        return self.env.get_template(name).render(context)

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        context.setdefault("request_path", request.url.path)
        query = request.url.query
        context.setdefault("request_url", request.url.path + ("?" + query if query else ""))
        html = self.render_text(name, context)
        response = HTMLResponse(html, status_code=status)
        response.headers.update(PAGE_HEADERS)
        # A page may be the whole document or an HTMX fragment of it.
        response.headers["Vary"] = "Accept, HX-Request, Cookie"
        response.headers["Cache-Control"] = "no-cache"
        if headers:
            response.headers.update(headers)
        return response


def query_string(base: dict[str, Any] | None = None, **changes: Any) -> str:
    """'?a=1&page=2' from current parameters with some changed; empty values dropped."""
    params = dict(base or {})
    params.update(changes)
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return "?" + urlencode(clean) if clean else ""


def is_web_url(value: object) -> bool:
    """Whether a URL from untrusted input (a torrent's web seeds) may become a link."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https", "ftp") and bool(parts.netloc)
