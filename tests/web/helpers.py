"""Helpers for web tests: HTML requests, logging in through the forms, reading pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from tests.instance.helpers import PASSWORD

HTML = {"accept": "text/html,application/xhtml+xml"}
HTMX = {"accept": "text/html", "hx-request": "true"}
BASE_URL = "http://127.0.0.1:8000"

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "the page has no form token"
    return match.group(1)


class Browser:
    """A cookie-keeping client that fills in forms like a browser would."""

    def __init__(self, app: Any) -> None:
        self.client = TestClient(app, base_url=BASE_URL, follow_redirects=False)
        self.token = ""

    def get(self, path: str, **headers: str) -> Any:
        r = self.client.get(path, headers={**HTML, **headers})
        if r.headers.get("content-type", "").startswith("text/html"):
            found = _CSRF.search(r.text)
            if found:
                self.token = found.group(1)
        return r

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        body = {"csrf_token": self.token, **(data or {})}
        headers = {**HTML, **kwargs.pop("headers", {})}
        return self.client.post(path, data=body, headers=headers, **kwargs)

    def login(self, name: str, password: str = PASSWORD) -> Any:
        self.get("/login")
        r = self.post("/login", {"name": name, "password": password})
        assert r.status_code == 303, r.text
        self.get("/account")  # the session's CSRF token, for later forms
        return r


def errors_of(html: str) -> dict[str, str]:
    """Field name -> error message shown next to it (elements with id NAME-error)."""
    found: dict[str, str] = {}

    class Parser(HTMLParser):
        current: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            ident = dict(attrs).get("id") or ""
            if ident.endswith("-error") and dict(attrs).get("class") == "error":
                self.current = ident.removesuffix("-error")
                found[self.current] = ""

        def handle_endtag(self, tag: str) -> None:
            self.current = None

        def handle_data(self, data: str) -> None:
            if self.current:
                found[self.current] += data

    Parser().feed(html)
    return found


def text_of(html: str) -> str:
    """The visible text of a page, whitespace collapsed (scripts and styles left out)."""
    chunks: list[str] = []

    class Parser(HTMLParser):
        skip = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style", "title"):
                self.skip += 1

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "title") and self.skip:
                self.skip -= 1

        def handle_data(self, data: str) -> None:
            if not self.skip:
                chunks.append(data)

    Parser().feed(html)
    return " ".join(" ".join(chunks).split())
