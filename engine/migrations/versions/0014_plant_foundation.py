"""plant master data and integration: materials, lot quantities, genealogy, connectors, process orders

* ``material``: the materials the plant consumes and produces, with their unit.
* ``material_lot`` gains quantity, unit, the producing batch and timestamps; its status
  may now also be ``expired``.
* ``equipment`` gains a name, a location, the OPC UA connector that reaches it and
  ``updated_at``; its status may now also be ``in_use`` or ``maintenance``.
* ``lot_movement``: genealogy, append-only (lots consumed and produced by batches).
* ``connector_instance``: configured connections to other systems (secrets encrypted).
* ``process_order``: process orders received from the ERP, one per batch.

Every column added to an existing table is nullable, so the previous release keeps
working against this schema (expand, then contract in a later release).

Revision ID: 0014_plant_foundation
Revises: 0013_model_approval
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0014_plant_foundation"
down_revision = "0013_model_approval"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "material",
        sa.Column("material_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    with op.batch_alter_table("material_lot") as b:
        b.add_column(sa.Column("quantity", sa.Float(), nullable=True))
        b.add_column(sa.Column("unit", sa.String(20), nullable=True))
        b.add_column(sa.Column("produced_by", sa.String(100), nullable=True))
        b.add_column(sa.Column("created_at", TZ, nullable=True))
        b.add_column(sa.Column("updated_at", TZ, nullable=True))
    with op.batch_alter_table("equipment") as b:
        b.add_column(sa.Column("name", sa.String(200), nullable=True))
        b.add_column(sa.Column("location", sa.String(200), nullable=True))
        b.add_column(sa.Column("connector", sa.String(100), nullable=True))
        b.add_column(sa.Column("updated_at", TZ, nullable=True))
    op.create_table(
        "lot_movement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("lot_id", sa.String(100), nullable=False),
        sa.Column("material", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False),
        sa.Column("step_seq", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(20), nullable=True),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_lot_movement_lot_id", "lot_movement", ["lot_id"])
    op.create_index("ix_lot_movement_batch_id", "lot_movement", ["batch_id"])
    op.create_table(
        "connector_instance",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("endpoint", sa.String(500), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("secret_ref", sa.String(300), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "process_order",
        sa.Column("order_id", sa.String(100), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False, unique=True),
        sa.Column("recipe", sa.String(200), nullable=False),
        sa.Column("recipe_version_id", sa.Integer(), sa.ForeignKey("recipe_version.id"), nullable=False),
        sa.Column("material", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("planned_lots", sa.JSON(), nullable=False),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("received_by", sa.String(100), nullable=False),
    )
    for statement in trigger_statements("lot_movement", op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("process_order")
    op.drop_table("connector_instance")
    op.drop_index("ix_lot_movement_batch_id", "lot_movement")
    op.drop_index("ix_lot_movement_lot_id", "lot_movement")
    op.drop_table("lot_movement")
    with op.batch_alter_table("equipment") as b:
        for column in ("updated_at", "connector", "location", "name"):
            b.drop_column(column)
    with op.batch_alter_table("material_lot") as b:
        for column in ("updated_at", "created_at", "produced_by", "unit", "quantity"):
            b.drop_column(column)
    op.drop_table("material")
