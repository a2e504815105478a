"""Plugs the seeding area into the app: its routes, and the seeder for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from holdfast.instance import Instance
from holdfast.seeding import api, webseed


def install(
    app: FastAPI, instance: Instance
) -> Callable[[], AbstractAsyncContextManager[None]] | None:
    app.include_router(api.router)
    app.include_router(webseed.router)
    if not instance.settings.seeder:
        return None

    @asynccontextmanager
    async def seeder() -> AsyncIterator[None]:
        from holdfast.seeding.seeder import Seeder

        running = Seeder(instance.settings, instance.db)
        await run_in_threadpool(running.start)
        instance.services["seeder"] = running
        try:
            yield
        finally:
            instance.services.pop("seeder", None)
            await run_in_threadpool(running.stop)

    return seeder
