"""Plugs the web interface into the app: pages, feeds, static files, error pages.

Called by `create_app` with the app and its instance. Pages stay out of the OpenAPI
document, which describes only the JSON API.
"""

from __future__ import annotations

from fastapi import FastAPI

from holdfast.instance import Instance
from holdfast.web import (
    account_pages,
    admin_pages,
    catalogue_pages,
    feeds,
    moderation_pages,
    publishing,
)
from holdfast.web.errors import error_renderer
from holdfast.web.rendering import STATIC_DIR, CachedStaticFiles, Pages


def install(app: FastAPI, instance: Instance) -> None:
    pages = Pages(instance)
    pages.compile_all()
    app.state.pages = pages
    app.state.render_error = error_renderer(pages)
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        catalogue_pages,
        publishing,
        account_pages,
        moderation_pages,
        admin_pages,
        feeds,
    ):
        app.include_router(module.router)
