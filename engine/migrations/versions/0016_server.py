"""the job workers' heartbeat: ``worker_heartbeat``, one row per worker process

Written every few seconds by each ``batchline worker`` (host, pid, last beat) and
stamped ``stopped_at`` with the job locks it released when it stops gracefully.
``/api/ready`` answers 503 when no worker has beaten recently; ``/metrics`` reports
the age of the newest beat. Expand-only (a new table): the previous release ignores it.

Revision ID: 0016_server
Revises: 0016_tasks
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_server"
down_revision = "0016_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeat",
        sa.Column("worker", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("released_jobs", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_worker_heartbeat_beat_at", "worker_heartbeat", ["beat_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeat_beat_at", table_name="worker_heartbeat")
    op.drop_table("worker_heartbeat")
