"""`holdfast admin`: account administration from the command line."""

from __future__ import annotations

import secrets
from typing import Any

import click

from holdfast.cli.common import build_settings, settings_options

ROLES = ["admin", "moderator", "uploader", "member"]


def _instance(options: dict[str, Any]) -> Any:
    from holdfast.db.migrate import upgrade
    from holdfast.instance import Instance

    settings = build_settings(options)
    upgrade(settings.resolved_database_url)
    return Instance.build(settings)


@click.group()
def admin() -> None:
    """Account administration."""


@admin.command("create-account")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option(
    "--password",
    envvar="HOLDFAST_NEW_PASSWORD",
    default=None,
    help="Password (or env HOLDFAST_NEW_PASSWORD). A random one is made and printed when omitted.",
)
@click.option(
    "--trusted/--not-trusted",
    default=None,
    help="Publish without review. Default: yes for uploader and above.",
)
@click.option(
    "--token",
    "make_token",
    is_flag=True,
    help="Also create an API token and print it (only the token, on the last line).",
)
@settings_options("data_dir", "database_url", "config_file")
def create_account(
    name: str,
    role: str,
    password: str | None,
    trusted: bool | None,
    make_token: bool,
    **options: Any,
) -> None:
    """Create an account, e.g. `holdfast admin create-account alice --role admin --token`."""
    from holdfast.accounts.models import Role
    from holdfast.errors import HoldfastError

    instance = _instance(options)
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    role_value = Role(role)
    try:
        account = instance.accounts.register(
            name,
            password,
            role=role_value,
            trusted=trusted if trusted is not None else role_value.at_least(Role.uploader),
        )
    except HoldfastError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"created account {account.name} ({account.role})", err=make_token)
    if generated:
        click.echo(f"password: {password}", err=make_token)
    if make_token:
        _row, plain = instance.accounts.create_token(account, "created by holdfast admin")
        click.echo(plain)


@admin.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@settings_options("data_dir", "database_url", "config_file")
def set_role(name: str, role: str, **options: Any) -> None:
    """Change an account's role."""
    from sqlalchemy import select

    from holdfast.accounts.models import Account, Role
    from holdfast.moderation.service import record

    instance = _instance(options)
    with instance.db.write() as s:
        account = s.scalar(select(Account).where(Account.name == name.lower()))
        if account is None:
            raise click.ClickException(f"no account named '{name}'")
        before = account.role
        account.role = Role(role).value
        record(
            s,
            None,
            "account.update",
            "account",
            account.id,
            reason="holdfast admin set-role",
            detail={"before": before, "role": role},
        )
    click.echo(f"{name} is now {role}")


@admin.command("setup-link")
@settings_options("data_dir", "database_url", "config_file", "public_url", "host", "port")
def setup_link(**options: Any) -> None:
    """Print a new one-time link to create the first admin."""
    instance = _instance(options)
    if instance.accounts.has_admin():
        raise click.ClickException("this instance already has an admin")
    token = instance.accounts.create_setup_token()
    click.echo(f"{instance.base_url}/setup?token={token}")
