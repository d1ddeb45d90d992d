"""who held a batch, when and why; why a task was reassigned — on the rows people read

* ``batch`` gains ``held_by``, ``held_at``, ``hold_reason``: set when a supervisor holds
  the batch, cleared when it resumes (the audit trail keeps every hold). The task list,
  the task page and the batch page show them without searching the audit trail.
* ``task_assignment`` gains ``reason``: the supervisor's reason, shown with the task.

Expand-only (nullable columns): the previous release keeps working against this schema.

Revision ID: 0015_floor
Revises: 0015_identity
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_floor"
down_revision = "0015_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch") as b:
        b.add_column(sa.Column("held_by", sa.String(100), nullable=True))
        b.add_column(sa.Column("held_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("hold_reason", sa.String(500), nullable=True))
    with op.batch_alter_table("task_assignment") as b:
        b.add_column(sa.Column("reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_assignment") as b:
        b.drop_column("reason")
    with op.batch_alter_table("batch") as b:
        b.drop_column("hold_reason")
        b.drop_column("held_at")
        b.drop_column("held_by")
