"""lockout with time-based release and back-off; failed password checks for the rate limits

Revision ID: 0003_lockout
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_lockout"
down_revision = "0002_server_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lock_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "auth_failure",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_failure_key_at", "auth_failure", ["key", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_auth_failure_key_at", table_name="auth_failure")
    op.drop_table("auth_failure")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("lock_count")
        batch_op.drop_column("locked_until")
