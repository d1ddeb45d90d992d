"""quality processes: a batch row is a production batch or a quality process

A quality process (QA's BPMN from ``workflows/qa/``: batch release, deviation) runs on the
same step path as a batch, so it is a ``batch`` row of kind ``quality`` with the subject it
is about (a batch, an exception, a recipe version). Existing rows are production batches.

Revision ID: 0007_quality_processes
Revises: 0006_qms
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_quality_processes"
down_revision = "0006_qms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch") as b:
        b.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="production"))
        b.add_column(sa.Column("subject_type", sa.String(20), nullable=True))
        b.add_column(sa.Column("subject_id", sa.String(100), nullable=True))
    op.create_index("ix_batch_subject", "batch", ["subject_type", "subject_id"])


def downgrade() -> None:
    op.drop_index("ix_batch_subject", table_name="batch")
    with op.batch_alter_table("batch") as b:
        for column in ("subject_id", "subject_type", "kind"):
            b.drop_column(column)
