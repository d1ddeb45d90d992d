"""archived batches: where a completed, QA-decided batch's sealed record file is

* ``archived_batch``: one row per archived batch (file location relative to
  ``archive_dir``, SHA-256 of the file, the record's content hash, who and when, the
  audit entry that binds the hash into the chain). The batch row itself stays.
  Append-only (triggers, and no UPDATE/DELETE for the application role): an archive
  is recorded once and never re-pointed.
* an index on ``workflow_task.data_hash``: archiving removes task data no other batch
  still uses, and asks that question per hash.

Expand-only (a new table, a new index): the previous release keeps working; it simply
never archives, and shows an archived batch's record from its live rows.

Revision ID: 0016_archive
Revises: 0016_oidc
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0016_archive"
down_revision = "0016_oidc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archived_batch",
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), primary_key=True),
        sa.Column("location", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_by", sa.String(200), nullable=False),
        sa.Column("audit_event_id", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_workflow_task_data_hash", "workflow_task", ["data_hash"])
    for statement in trigger_statements("archived_batch", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_workflow_task_data_hash", table_name="workflow_task")
    op.drop_table("archived_batch")
