"""`holdfast serve`: run the instance (web UI, API, ActivityPub, tracker, jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import click

from holdfast.cli.common import build_settings, settings_options


@click.command()
@settings_options()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(log_level: str, **options: Any) -> None:
    """Run the instance. With no configuration at all it creates its data folder,
    database and secret, and prints a one-time link to create the first admin."""
    import uvicorn

    from holdfast.app import create_app

    settings = build_settings(options)
    job_process = settings.run_jobs and settings.job_process
    app = create_app(settings, jobs_here=not job_process)  # else its child process runs them
    instance = app.state.instance
    base = instance.base_url
    click.echo(f"holdfast: data folder {instance.settings.data_dir}")
    click.echo(f"holdfast: database {safe_url(instance.settings.resolved_database_url)}")
    if not instance.accounts.has_admin():
        token = instance.accounts.create_setup_token()
        click.echo("holdfast: no admin yet. Create the first admin account at")
        click.echo(f"    {base}/setup?token={token}")
        click.echo("  (the link works once; restart to get a new one)")
    click.echo(
        f"holdfast: serving at {base}/ (listening on "
        f"{instance.settings.host}:{instance.settings.port})"
    )
    freeze_after_startup(app)
    if job_process:
        with_job_process(app, instance.settings)
    elif not instance.settings.run_jobs:
        click.echo("holdfast: background jobs are left to `holdfast worker` processes")
    uvicorn.run(
        app,
        host=instance.settings.host,
        port=instance.settings.port,
        log_level=log_level,
        proxy_headers=False,
    )


def freeze_after_startup(app: Any) -> None:
    """Once the app has started, keep what is allocated by then (modules, the app, its
    routes, settings: it lives as long as the process) out of the garbage collector's
    full collections (`gc.freeze`): walking it held the event loop 50-100 ms each time."""
    import contextlib
    import gc

    @contextlib.asynccontextmanager
    async def frozen() -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        yield

    _after_startup(app, frozen)


def with_job_process(app: Any, settings: Any) -> None:
    """Run the jobs in a child process for the app's lifetime: started once the app has
    started (its database is migrated), stopped when it shuts down (uvicorn ends the
    process with the signal it got right after that, so later would be too late)."""
    import asyncio
    import contextlib

    from holdfast.jobs.child import JobProcess

    @contextlib.asynccontextmanager
    async def child() -> AsyncIterator[None]:
        jobs = await asyncio.to_thread(JobProcess(settings).start)
        click.echo(f"holdfast: background jobs run in process {jobs.pid}")
        try:
            yield
        finally:
            await asyncio.to_thread(jobs.stop)

    _after_startup(app, child)


def _after_startup(app: Any, hook: Callable[[], AbstractAsyncContextManager[None]]) -> None:
    """Enter `hook()` once the app's own start-up is done; leave it before its shutdown."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state, hook():
            yield state

    app.router.lifespan_context = lifespan


def safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # printing only; never fail start-up over it
        return "(unprintable URL)"
