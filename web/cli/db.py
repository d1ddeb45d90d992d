"""``batchline db``: the database schema, and on PostgreSQL the application's role."""

from __future__ import annotations

from dataclasses import replace

import click

from .context import runtime
from .output import json_option, say
from .root import main


@main.group()
def db():
    """The database schema."""


@db.command("upgrade")
@click.option(
    "--grant-to",
    "grant_to",
    metavar="ROLE",
    help="PostgreSQL: the role the application runs as (default: the database_app_role setting, batchline_app); "
    "it gets no UPDATE, DELETE or TRUNCATE on the record and the audit trail.",
)
@click.option("--no-grant", is_flag=True, help="PostgreSQL: upgrade the schema only, leave roles alone.")
@json_option
def db_upgrade(grant_to: str | None, no_grant: bool):
    """Create or upgrade the database schema to the newest revision.

    Runs as the schema owner: BATCHLINE_MIGRATION_DATABASE_URL when set (the application
    then connects with BATCHLINE_DATABASE_URL as the application role), else
    BATCHLINE_DATABASE_URL. On PostgreSQL it then grants the application role its rights.
    """
    from engine import migrate
    from engine.append_only import grant_app_role
    from engine.db import make_engine

    rt = runtime()
    settings = rt.settings
    owner = rt.db
    if settings.migration_database_url:
        owner = make_engine(replace(settings, database_url=settings.migration_database_url))
    migrate.upgrade(owner)
    revision = migrate.current(owner)
    out: dict[str, object] = {"revision": revision}
    message = f"database at revision {revision}"
    if owner.dialect.name == "postgresql" and not no_grant:
        granted = grant_app_role(owner, grant_to or settings.database_app_role)
        out["app_role"] = granted
        message += (
            f"; application role {granted['role']}{' created (NOLOGIN)' if granted['created'] else ''}: "
            "no UPDATE, DELETE or TRUNCATE on the record and the audit trail"
        )
    if owner is not rt.db:
        owner.dispose()
    say(message, out)
