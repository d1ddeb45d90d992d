"""The database refuses to rewrite the record, and the application cannot even ask.

Two layers on PostgreSQL (docs/security.md, "The audit trail and the record"):

* triggers (migration ``0004_audit_integrity``) refuse UPDATE, DELETE and TRUNCATE on the
  append-only tables for every role, the owner included — a mistaken or injected
  statement fails loudly instead of changing history;
* the application runs as a role that was never granted UPDATE, DELETE or TRUNCATE on
  those tables (``grant_app_role``, run by ``batchline db upgrade``); only the schema
  owner, used for migrations (``BATCHLINE_MIGRATION_DATABASE_URL``), could drop a trigger.

On SQLite there are no roles: triggers refuse UPDATE and DELETE. An owner who drops the
triggers can still write — that is what the keyed chain, the record binding and the
anchors are for: ``batchline audit verify`` then says what was changed.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .errors import BatchlineError

#: tables whose rows are never changed or deleted once written
APPEND_ONLY = (
    "audit_event",
    "step",
    "signature",
    "correction",
    "exception_disposition",
    "batch_disposition",
    "qualification",
    "batch_migration_signature",
    "equipment_log_entry",
    "task_time",
    "trend_training",
    "trend_training_decision",
    "lot_movement",
    "archived_batch",
)
#: the migrations' own bookkeeping: the application reads it (health), never writes it
SCHEMA_TABLES = ("alembic_version",)
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleSetupFailed(BatchlineError):
    code = "app_role_failed"
    status = 500


def grant_app_role(engine: Engine, role: str) -> dict[str, object]:
    """Create ``role`` if missing (NOLOGIN: the DBA gives it a password and LOGIN) and give
    it exactly what the application needs: read and write every table, but only SELECT
    and INSERT on the append-only ones, and nothing on the schema itself. Run after each
    upgrade (new tables get their grants). PostgreSQL only."""
    if engine.dialect.name != "postgresql":
        raise RoleSetupFailed("application roles exist on PostgreSQL only", code="app_role_unsupported")
    if not ROLE_NAME.match(role):
        raise RoleSetupFailed(f"{role!r} is not a plain role name (a-z, 0-9, _)", code="app_role_invalid")
    try:
        with engine.begin() as conn:
            owner = conn.execute(text("SELECT current_user")).scalar_one()
            if role == owner:
                raise RoleSetupFailed(
                    f"{role!r} is the schema owner: the application must run as another role", code="app_role_invalid"
                )
            created = not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if created:  # another installation on the cluster may create it at the same moment
                conn.execute(
                    text(f'DO $$ BEGIN CREATE ROLE "{role}" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$')
                )
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            tables = [r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
            conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
            for table in tables:
                conn.execute(text(f'REVOKE ALL ON TABLE "{table}" FROM "{role}"'))
                if table in APPEND_ONLY or table in SCHEMA_TABLES:
                    rights = "SELECT" if table in SCHEMA_TABLES else "SELECT, INSERT"
                else:
                    rights = "SELECT, INSERT, UPDATE, DELETE"
                conn.execute(text(f'GRANT {rights} ON TABLE "{table}" TO "{role}"'))
            conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    except RoleSetupFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - missing CREATEROLE, a role owned elsewhere, ...
        raise RoleSetupFailed(f"could not set up the application role {role!r}: {exc}") from exc
    return {"role": role, "created": created, "append_only": list(APPEND_ONLY)}


def trigger_statements(table: str, dialect: str) -> list[str]:
    """The SQL that makes ``table`` append-only, as migration ``0004_audit_integrity`` did
    for the first four tables: on PostgreSQL a row trigger refusing UPDATE and DELETE and a
    statement trigger refusing TRUNCATE (the function ``batchline_append_only`` comes from
    0004), and no such rights for PUBLIC; on SQLite one trigger per refused statement.
    Every later migration adding a record table calls this, so they all refuse alike."""
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION batchline_append_only()",
            f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION batchline_append_only()",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
        ]
    return [
        f"CREATE TRIGGER {table}_append_only_{what.lower()} BEFORE {what} ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'append_only: {what} on {table} is refused: "
        "the record and the audit trail are never changed'); END"
        for what in ("UPDATE", "DELETE")
    ]
