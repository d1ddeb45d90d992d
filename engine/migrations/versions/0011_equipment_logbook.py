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
    if op.get_bind().dialect.name == "postgresql":  # the function comes from 0004_audit_integrity
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION batchline_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION batchline_append_only()"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {TABLE} FROM PUBLIC")
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_append_only_{what.lower()} BEFORE {what} ON {TABLE} BEGIN "
                f"SELECT RAISE(ABORT, 'append_only: {what} on {TABLE} is refused: "
                "the record and the audit trail are never changed'); END"
            )


def downgrade() -> None:
    op.drop_table(TABLE)
