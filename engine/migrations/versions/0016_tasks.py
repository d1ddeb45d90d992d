"""ready_task: the index of the operator tasks waiting in running and held batches

* ``ready_task``: one row per ready user task of a batch (its id, BPMN id, name, process,
  role, assignee, qualifications, form key, when it became ready, and the batch's kind
  and subject), written in the transaction that commits the workflow state, so "my tasks"
  reads one indexed table instead of loading every running workflow.
* ``batch.ready_revision``: the batch revision the index reflects. A batch whose
  ``ready_revision`` differs from its ``revision`` (every batch after this upgrade, or
  one changed by a previous release) is re-indexed from its workflow on first use.

Expand-only (a new table, a new nullable column): the previous release keeps working
against this schema, and its changes are caught by the revision check.

Revision ID: 0016_tasks
Revises: 0015_floor
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_tasks"
down_revision = "0015_floor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ready_task",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("batch_pk", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("bpmn_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("process_name", sa.String(200), nullable=True),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("assigned_to", sa.String(100), nullable=True),
        sa.Column("qual", sa.JSON(), nullable=False),
        sa.Column("form", sa.String(200), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("recipe_version_id", sa.Integer(), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("batch_kind", sa.String(20), nullable=False),
        sa.Column("subject_type", sa.String(20), nullable=True),
        sa.Column("subject_id", sa.String(100), nullable=True),
        sa.UniqueConstraint("batch_pk", "task_id", name="uq_ready_task"),
    )
    op.create_index("ix_ready_task_role", "ready_task", ["role", "id"])
    op.create_index("ix_ready_task_assigned_to", "ready_task", ["assigned_to", "id"])
    with op.batch_alter_table("batch") as b:
        b.add_column(sa.Column("ready_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch") as b:
        b.drop_column("ready_revision")
    op.drop_index("ix_ready_task_assigned_to", table_name="ready_task")
    op.drop_index("ix_ready_task_role", table_name="ready_task")
    op.drop_table("ready_task")
