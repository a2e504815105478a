"""Every route of an app, for the tests that give each route a rule.

FastAPI keeps a router included with `include_router` as one entry of `app.routes`
(its prefix in the entry's include context), so `app.routes` alone misses them; this
walks into included routers and mounts, joining the prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    endpoint: Any

    @property
    def module(self) -> str:
        return str(getattr(self.endpoint, "__module__", "") or "")


def app_routes(app: Any) -> list[RouteInfo]:
    found: list[RouteInfo] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                context = getattr(route, "include_context", None)
                walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
                continue
            path = getattr(route, "path", None)
            if not path:
                continue
            methods = getattr(route, "methods", None) or {"GET"}
            endpoint = getattr(route, "endpoint", None)
            found.extend(RouteInfo(m, prefix + path, endpoint) for m in methods if m != "HEAD")

    walk(list(app.routes), "")
    return found
