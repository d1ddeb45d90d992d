"""running-batch migrations: a supervisor's request, QA's e-signed approval

``batch_migration`` holds each request to move a running batch to a newer version of its
recipe and its outcome; ``batch_migration_signature`` the approving QA signature,
append-only like every other signature (triggers refuse UPDATE and DELETE).

Revision ID: 0009_batch_migrations
Revises: 0008_qualifications
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_batch_migrations"
down_revision = "0008_qualifications"
branch_labels = None
depends_on = None

APPEND_ONLY = ("batch_migration_signature",)


def upgrade() -> None:
    op.create_table(
        "batch_migration",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False, index=True),
        sa.Column("from_version_id", sa.Integer(), sa.ForeignKey("recipe_version.id"), nullable=False),
        sa.Column("to_version_id", sa.Integer(), sa.ForeignKey("recipe_version.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_table(
        "batch_migration_signature",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("migration_id", sa.Integer(), sa.ForeignKey("batch_migration.id"), nullable=False, index=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(50), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:  # the function comes from 0004_audit_integrity
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
    op.drop_table("batch_migration_signature")
    op.drop_table("batch_migration")
