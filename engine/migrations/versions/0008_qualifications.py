"""qualifications: people's training records, which gate the tasks that need them

``qualification`` holds e-signed grants (a qualification valid until a date) and
revocations, one row each, never changed: the current state is the newest row per person
and qualification (``engine.qualifications``). Append-only like the other signed tables
(the trigger function comes from 0004_audit_integrity).

Revision ID: 0008_qualifications
Revises: 0007_quality_processes
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0008_qualifications"
down_revision = "0007_quality_processes"
branch_labels = None
depends_on = None

TABLE = "qualification"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("qualification", sa.String(64), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(50), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_qualification_username", TABLE, ["username"])
    op.create_index("ix_qualification_qualification", TABLE, ["qualification"])
    dialect = op.get_bind().dialect.name
    for table in (TABLE,):
        for statement in trigger_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_qualification_qualification", table_name=TABLE)
    op.drop_index("ix_qualification_username", table_name=TABLE)
    op.drop_table(TABLE)
