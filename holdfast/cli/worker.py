"""`holdfast worker`: run background jobs in a separate process.

Run as many as you like, on one machine or several sharing a PostgreSQL database
(with `run_jobs = false` on the servers, or alongside them). SIGTERM or Ctrl-C stops
claiming work, lets running jobs finish for `--grace` seconds, then hands the rest
back to the queue; a second signal hands them back at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from holdfast.settings import ConfigError, Settings


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder of the instance (default: HOLDFAST_DATA_DIR or the platform's).",
)
@click.option(
    "--database-url",
    default=None,
    help="Database of the instance (default: HOLDFAST_DATABASE_URL or its SQLite file).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs run at the same time by this process.",
)
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit.")
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Also import MODULE to register its job kinds (repeatable).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running jobs get to finish on shutdown before they are handed back.",
)
def worker(
    data_dir: Path | None,
    database_url: str | None,
    threads: int,
    once: bool,
    imports: tuple[str, ...],
    grace: float,
) -> None:
    """Run background jobs (scrapes, deliveries, checks) until stopped."""
    from holdfast.db import Database
    from holdfast.jobs import JobRunner, load_job_modules

    if not logging.getLogger().handlers:
        # holdfast's own messages at INFO; libraries (alembic is chatty) at WARNING.
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("holdfast").setLevel(logging.INFO)
    given: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        url = settings.resolved_database_url
        shown_url = make_url(url).render_as_string(hide_password=True)
        # Before prepare(), which creates the data folder: a mistyped folder or URL
        # must leave nothing behind.
        _check_database(url, shown_url)
        settings = settings.prepare()
    except (ConfigError, ValidationError, ArgumentError) as exc:
        raise click.ClickException(str(exc)) from None

    try:
        loaded = load_job_modules(imports)
    except ImportError as exc:
        raise click.ClickException(f"cannot import job module: {exc}") from None
    logging.getLogger("holdfast.jobs").debug("job modules: %s", ", ".join(loaded))

    db = Database(url)
    runner = JobRunner(db, settings, threads=threads)
    stop_requested = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop_requested.is_set():
            hurry.set()
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        click.echo(f"holdfast worker: {threads} thread(s) on {shown_url}", err=True)
        runner.start(once=once)
        # Wait in short slices: signal handlers run only between them.
        while runner.is_alive() and not stop_requested.wait(0.2):
            pass
        released = runner.stop(grace, interrupt=hurry)
        if released:
            click.echo(f"handed back unfinished job(s): {released}", err=True)
        click.echo(f"holdfast worker: stopped after {runner.executed} job run(s)", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        db.dispose()


def _check_database(url: str, shown_url: str) -> None:
    """Refuse to run against a missing or outdated database, without creating one."""
    from holdfast.db.migrate import is_current

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise click.ClickException(
                f"no database at {shown_url}: run `holdfast db upgrade` or `holdfast serve` first"
            )
    try:
        current = is_current(url)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot use the database at {shown_url}: {exc}") from None
    if not current:
        raise click.ClickException(
            f"the database at {shown_url} is not up to date: run `holdfast db upgrade`"
        )
