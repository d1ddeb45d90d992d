"""``batchline db``: the database schema."""

from __future__ import annotations

from .context import runtime
from .output import json_option, say
from .root import main


@main.group()
def db():
    """The database schema."""


@db.command("upgrade")
@json_option
def db_upgrade():
    """Create or upgrade the database schema to the newest revision."""
    from engine import migrate

    rt = runtime()
    rt.create_schema()
    revision = migrate.current(rt.db)
    say(f"database at revision {revision}", {"revision": revision})
