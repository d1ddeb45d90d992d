"""The ``batchline`` command itself: its global options (``--config``, ``--json``), user
errors turned into ``error [code]: message`` (exit 2), and the plug-in command groups
of the ``batchline.cli`` entry point group, loaded only when used so that a broken or
missing optional module never breaks the rest."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.errors import BatchlineError, RecipeInvalid

from .context import CliContext
from .output import fail, problem_line

PLUGIN_GROUP = "batchline.cli"


class BatchlineGroup(click.Group):
    """Turns user errors into ``error [code]: message`` and mounts plug-in groups lazily."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RecipeInvalid as exc:
            fail(
                exc.code,
                f"the recipe cannot run ({len(exc.problems)} problem(s))",
                [problem_line(p) for p in exc.problems],
            )
        except BatchlineError as exc:
            fail(exc.code, exc.message)
        except (OperationalError, ProgrammingError) as exc:
            fail("database_error", f"{exc.orig} (is the database reachable and upgraded? run `batchline db upgrade`)")

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        ep = self._plugins().get(name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except Exception as exc:  # a broken optional module must not break the CLI
            click.echo(f"warning: command group {name!r} could not be loaded ({type(exc).__name__}: {exc})", err=True)
            return None
        return command if isinstance(command, click.Command) else None


@click.group(cls=BatchlineGroup)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BATCHLINE_CONFIG",
    help="TOML config file (env: BATCHLINE_CONFIG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, as_json: bool):
    """Batchline: BPMN recipes, electronic batch records, review by exception."""
    session = ctx.ensure_object(CliContext)
    session.config_file = config_file or session.config_file
    session.as_json = session.as_json or as_json
    ctx.call_on_close(session.close)
