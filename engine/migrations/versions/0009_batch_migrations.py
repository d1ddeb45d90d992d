"""running-batch migrations: a supervisor's request, QA's e-signed approval

``batch_migration`` holds each request to move a running batch to a newer version of its
recipe and its outcome; ``batch_migration_signature`` the approving QA signature,
append-only like every other signature (triggers refuse UPDATE and DELETE).

Revision ID: 0009_batch_migrations
Revises: 0008_qualifications
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

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
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for statement in trigger_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("batch_migration_signature")
    op.drop_table("batch_migration")
