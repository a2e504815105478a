"""Plugs federation into the app: ActivityPub routes, the admin API, catalogue events.

Installed by `create_app` when present. With `federation = false` nothing is added.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import FastAPI

from holdfast.accounts.instance_values import values_of
from holdfast.federation import admin, routes
from holdfast.federation.netguard import guarded_client
from holdfast.federation.service import Federation
from holdfast.instance import Instance


def install(
    app: FastAPI, instance: Instance
) -> Callable[[], AbstractAsyncContextManager[None]] | None:
    settings = instance.settings
    if not settings.federation:
        return None
    federation = Federation(instance.db, settings, values_of(instance))
    federation.keys  # noqa: B018 - made and stored now, never inside another transaction
    instance.services["federation"] = federation
    app.state.federation = federation
    clients: list[httpx.AsyncClient] = []

    def client() -> httpx.AsyncClient:
        if not clients:
            clients.append(guarded_client(allow_private=settings.allow_private_addresses))
        return clients[0]

    app.state.federation_client = client
    app.add_middleware(routes.ActivityNegotiation)
    app.include_router(routes.router)
    app.include_router(admin.router, prefix="/api/v1")
    instance.db.on_commit(federation.on_commit)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            yield
        finally:
            while clients:
                await clients.pop().aclose()

    return lifespan
