"""task times and the finding key: append-only ``task_time``, ``batch_exception.finding_key``

``task_time`` holds when a batch's task became ready, was first opened, and when a unit
procedure (call activity) started and ended: a step's duration is measured from its own
task's start, also in parallel branches, and equipment samples are scored only while
their unit procedure runs. Append-only like the batch record (triggers refuse UPDATE and
DELETE, and TRUNCATE on PostgreSQL).

``batch_exception.finding_key`` (nullable, unique) makes an out-of-trend finding raised
once, whatever two scoring jobs do at the same time: the database refuses the second.

Revision ID: 0012_task_times_finding_key
Revises: 0011_equipment_logbook
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0012_task_times_finding_key"
down_revision = "0011_equipment_logbook"
branch_labels = None
depends_on = None

TABLE = "task_time"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False, index=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("bpmn_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(100), nullable=True),
        sa.UniqueConstraint("batch_id", "task_id", "kind", name="uq_task_time"),
    )
    dialect = op.get_bind().dialect.name
    for statement in trigger_statements(TABLE, dialect):
        op.execute(statement)
    with op.batch_alter_table("batch_exception") as batch:
        batch.add_column(sa.Column("finding_key", sa.String(64), nullable=True))
    op.create_index("ix_batch_exception_finding_key", "batch_exception", ["finding_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_batch_exception_finding_key", table_name="batch_exception")
    with op.batch_alter_table("batch_exception") as batch:
        batch.drop_column("finding_key")
    op.drop_table(TABLE)
