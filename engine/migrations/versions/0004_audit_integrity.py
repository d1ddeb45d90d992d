"""audit integrity: keyed chain columns, record binding, append-only triggers

The audit chain becomes an HMAC under a key the database does not hold (engine/audit):
``audit_event.scheme`` says how an entry was sealed — existing entries keep their plain
SHA-256 hashes (``sha256``; a migration cannot re-key them without the key) and the
first keyed append seals them as the legacy part; ``audit_event.bound`` carries the
record rows an entry records. ``audit_head.scheme`` tells the application whether the
legacy part still has to be sealed.

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the append-only tables
``audit_event``, ``step``, ``signature`` and ``correction``, for every role including the
owner. The application role without those grants is set up by ``batchline db upgrade``
(engine/append_only.py), not here: roles belong to the cluster, not to the schema.

Revision ID: 0004_audit_integrity
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_audit_integrity"
down_revision = "0003_lockout"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_event", "step", "signature", "correction")


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("scheme", sa.String(length=20), server_default="sha256", nullable=False))
    op.add_column("audit_event", sa.Column("bound", sa.Text(), nullable=True))
    op.add_column("audit_head", sa.Column("scheme", sa.String(length=20), server_default="sha256", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION batchline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'append_only: % on % is refused: the record and the audit trail are never changed',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'P0001';
            END
            $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION batchline_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION batchline_append_only()"
            )
            op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
    else:
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_append_only_{what.lower()} BEFORE {what} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'append_only: {what} on {table} is refused: "
                    "the record and the audit trail are never changed'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS batchline_append_only()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_delete")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("scheme")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("bound")
        batch.drop_column("scheme")
