"""Shared CLI pieces: every setting as a command-line option, declared once in Settings."""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from holdfast.settings import ConfigError, Settings


def _option_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is_flag) for a settings field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation is bool:
        return bool, True
    if annotation is int:
        return int, False
    if annotation is float:
        return float, False
    if annotation is Path:
        return click.Path(path_type=Path), False
    return str, False


def settings_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add `--name` options for the named settings (all of them when none are named).

    Options default to None so that environment variables and the config file apply
    unless a flag is given.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        fields = Settings.model_fields
        # The secret is never a flag: command lines are visible to every local user.
        chosen = names or tuple(f for f in fields if f != "secret_key")
        for name in reversed(chosen):
            info = fields[name]
            click_type, is_flag = _option_type(info.annotation)
            flag = "--" + name.replace("_", "-")
            env = "HOLDFAST_" + name.upper()
            help_text = f"{info.description or ''} [env: {env}]"
            if is_flag:
                func = click.option(
                    f"{flag}/--no-{name.replace('_', '-')}",
                    name,
                    default=None,
                    help=help_text,
                )(func)
            else:
                func = click.option(flag, name, type=click_type, default=None, help=help_text)(func)
        return func

    return decorate


def build_settings(options: dict[str, Any]) -> Settings:
    """Settings from the given options (None means "not given"), env and config file."""
    given = {k: v for k, v in options.items() if v is not None and k in Settings.model_fields}
    try:
        return Settings(**given).prepare()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from exc
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def is_interactive() -> bool:
    return sys.stdin.isatty()
