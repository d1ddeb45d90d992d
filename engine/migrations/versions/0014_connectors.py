"""LIMS samples and result receipts (issue 12, connectors)

* ``lims_sample``: samples requested from a LIMS, with the specification limits sent.
* ``lims_result_receipt``: result ids received from a LIMS (replays deliver nothing).

Revision ID: 0014_connectors
Revises: 0014_events
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_connectors"
down_revision = "0014_events"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lims_sample",
        sa.Column("sample_id", sa.String(100), primary_key=True),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("task_key", sa.String(200), nullable=False),
        sa.Column("specifications", sa.JSON(), nullable=False),
        sa.Column("requested_at", TZ, nullable=False),
    )
    op.create_index("ix_lims_sample_batch_id", "lims_sample", ["batch_id"])
    op.create_table(
        "lims_result_receipt",
        sa.Column("result_id", sa.String(200), primary_key=True),
        sa.Column("sample_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("delivered_to", sa.JSON(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_lims_result_receipt_sample_id", "lims_result_receipt", ["sample_id"])


def downgrade() -> None:
    op.drop_index("ix_lims_result_receipt_sample_id", "lims_result_receipt")
    op.drop_table("lims_result_receipt")
    op.drop_index("ix_lims_sample_batch_id", "lims_sample")
    op.drop_table("lims_sample")
