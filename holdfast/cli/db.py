"""`holdfast db`: database operations."""

from __future__ import annotations

from typing import Any

import click

from holdfast.cli.common import build_settings, settings_options


@click.group()
def db() -> None:
    """Database operations."""


@db.command()
@settings_options("data_dir", "database_url", "config_file")
def upgrade(**options: Any) -> None:
    """Apply every pending migration."""
    from holdfast.cli.serve import safe_url
    from holdfast.db.migrate import upgrade as run_upgrade

    settings = build_settings(options)
    run_upgrade(settings.resolved_database_url)
    click.echo(f"database is up to date: {safe_url(settings.resolved_database_url)}")


@db.command()
@settings_options("data_dir", "database_url", "config_file")
def status(**options: Any) -> None:
    """Say whether migrations are pending (exit status 1 if they are)."""
    from holdfast.db.migrate import is_current

    settings = build_settings(options)
    if is_current(settings.resolved_database_url):
        click.echo("up to date")
    else:
        click.echo("migrations pending: run `holdfast db upgrade`")
        raise SystemExit(1)
