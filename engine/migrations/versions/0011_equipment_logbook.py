"""equipment logbook: append-only ``equipment_log_entry``

A user task with a ``logbook`` property (calibration, daily_check, cip, sip,
line_clearance, use) writes one entry per scanned equipment on the step path
(``engine.equipment_logbook``). Like the batch record, the table is append-only: triggers
refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

Revision ID: 0011_equipment_logbook
Revises: 0010_recipe_lifecycle
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0011_equipment_logbook"
down_revision = "0010_recipe_lifecycle"
branch_labels = None
depends_on = None

TABLE = "equipment_log_entry"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("equipment_id", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False, index=True),
        sa.Column("step_seq", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    for table in (TABLE,):
        for statement in trigger_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table(TABLE)
