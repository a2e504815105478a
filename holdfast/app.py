"""The application factory: `create_app(settings)` builds one instance's ASGI app.

Nothing is created at import time, so a test can run several instances in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from holdfast import __version__
from holdfast.api import accounts, catalogue, moderation
from holdfast.api.errors import install_error_handlers
from holdfast.api.schemas import ErrorOut
from holdfast.db.migrate import upgrade
from holdfast.instance import Instance
from holdfast.settings import Settings

log = logging.getLogger("holdfast")

# Parts that plug into the app: each is called with (app, instance) while the app is
# built, and may return an async context manager factory run for the app's lifetime
# (to start and stop background work). Later areas (web pages, tracker, federation,
# seeder, jobs) add themselves here.
Extension = Callable[[FastAPI, Instance], Any]


def _extensions() -> list[Extension]:
    import importlib

    found: list[Extension] = []
    for name in (
        "holdfast.web.extension",
        "holdfast.swarm.extension",
        "holdfast.seeding.extension",
        "holdfast.federation.extension",
        "holdfast.arrays.extension",
    ):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        found.append(module.install)
    return found


def create_app(settings: Settings, *, migrate: bool = True, jobs_here: bool = True) -> FastAPI:
    """Build the instance described by `settings` and its ASGI app. With `jobs_here`
    off the app runs no jobs itself (`holdfast serve` runs them in a child process)."""
    settings = settings.prepare()
    instance = Instance.build(settings)
    if migrate:
        upgrade(settings.resolved_database_url)

    lifespans: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for factory in lifespans:
                await stack.enter_async_context(factory())
            yield
        instance.db.dispose()

    app = FastAPI(
        title=f"holdfast: {settings.instance_title}",
        version=__version__,
        description="The JSON API of a holdfast instance. Every error has the shape "
        '`{"ok": false, "error": "...", "status": N}`.',
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        responses={
            400: {"model": ErrorOut},
            401: {"model": ErrorOut},
            403: {"model": ErrorOut},
            404: {"model": ErrorOut},
            422: {"model": ErrorOut},
        },
    )
    app.state.instance = instance
    install_error_handlers(app)

    api = APIRouter(prefix="/api/v1")

    @api.get("/health", tags=["instance"])
    def health() -> dict[str, Any]:
        """Whether the instance is up, and its version."""
        return {"ok": True, "version": __version__, "name": settings.instance_name}

    api.include_router(accounts.router)
    api.include_router(catalogue.router)
    api.include_router(moderation.router)
    app.include_router(api)

    @asynccontextmanager
    async def jobs() -> AsyncIterator[None]:
        from holdfast.jobs import background_jobs

        if not jobs_here:
            instance.services["jobs"] = None
            yield
            return
        async with background_jobs(instance.db, settings) as runner:
            instance.services["jobs"] = runner
            yield

    lifespans.append(jobs)

    for install in _extensions():
        lifespan_factory = install(app, instance)
        if lifespan_factory is not None:
            lifespans.append(lifespan_factory)
    return app
