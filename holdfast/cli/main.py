"""The `holdfast` command.

Each command group lives in its own module and is imported only when it is
used, so `holdfast torrent inspect` does not pay for starting a web server and
`holdfast --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from holdfast import __version__

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "serve": "holdfast.cli.serve:serve",
    "db": "holdfast.cli.db:db",
    "admin": "holdfast.cli.admin:admin",
    "worker": "holdfast.cli.worker:worker",
    "torrent": "holdfast.cli.torrent:torrent",
    "publish": "holdfast.cli.publish:publish",
    "seed": "holdfast.cli.seed:seed",
    "verify": "holdfast.cli.verify:verify",
    "arrays": "holdfast.cli.arrays:arrays",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A command whose module is not part of this build is simply absent;
            # any other missing module is a real error and must surface.
            if exc.name == module_name:
                return None
            raise
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="holdfast")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """holdfast: a federated, peer-to-peer archive for research data.

    Run without a command to start the instance (the same as `holdfast serve`).
    """
    if ctx.invoked_subcommand is None:
        serve = cli.get_command(ctx, "serve")
        if serve is None:  # pragma: no cover - serve is always part of the package
            raise click.UsageError("the serve command is missing from this installation")
        ctx.invoke(serve)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="holdfast")
