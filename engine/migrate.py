"""Schema changes through Alembic migrations (``batchline db upgrade``).

The migration scripts live in ``engine/migrations``; Alembic is driven from code so the
CLI, the web app and tests all upgrade the same way, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    """The newest revision the code knows (health checks compare it with ``current``)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def known(revision: str | None) -> bool:
    """Whether this code has the migration ``revision`` (a newer release's is unknown)."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    if revision is None:
        return False
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except CommandError:
        return False


def schema_state(revision: str | None) -> str:
    """``ok`` at the code's head; ``ahead`` when a newer release has migrated the database
    (migrations are expand-only for one release, docs/operations.md: this node keeps
    serving during a rolling upgrade); ``outdated`` when the database still needs
    ``batchline db upgrade``."""
    if revision is not None and revision == head():
        return "ok"
    if revision is not None and not known(revision):
        return "ahead"
    return "outdated"
