"""master data maintenance: status reasons, row versions, calibration interval

* ``material``, ``material_lot``, ``equipment`` gain ``version`` (a change names the
  version it read: no lost update).
* ``material_lot`` and ``equipment`` gain ``status_reason`` (why QA released or rejected
  a lot, why maintenance took equipment out: what a refused scan tells the operator).
* ``equipment`` gains ``calibration_interval_days`` (how long a calibration or daily
  check holds when the SOP's form gives no date) and ``in_use_scope`` (the unit
  procedure that took it, released at its end when so configured).

All nullable: the previous release keeps working against this schema.

Revision ID: 0014_masterdata
Revises: 0014_connectors
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_masterdata"
down_revision = "0014_connectors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("material") as b:
        b.add_column(sa.Column("version", sa.Integer(), nullable=True))
    with op.batch_alter_table("material_lot") as b:
        b.add_column(sa.Column("status_reason", sa.String(500), nullable=True))
        b.add_column(sa.Column("version", sa.Integer(), nullable=True))
    with op.batch_alter_table("equipment") as b:
        b.add_column(sa.Column("status_reason", sa.String(500), nullable=True))
        b.add_column(sa.Column("calibration_interval_days", sa.Integer(), nullable=True))
        b.add_column(sa.Column("version", sa.Integer(), nullable=True))
        b.add_column(sa.Column("in_use_scope", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("equipment") as b:
        for column in ("in_use_scope", "version", "calibration_interval_days", "status_reason"):
            b.drop_column(column)
    with op.batch_alter_table("material_lot") as b:
        for column in ("version", "status_reason"):
            b.drop_column(column)
    with op.batch_alter_table("material") as b:
        b.drop_column("version")
