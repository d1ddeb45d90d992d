"""out-of-trend models are GMP records: training runs, their reports and QA's decision

A training run (``trend_training``) keeps the evaluation report of the models it made;
QA approves or rejects it with an e-signature (``trend_training_decision``, one per run).
Both tables are append-only (triggers refuse UPDATE and DELETE, and TRUNCATE on
PostgreSQL). ``trend_model.training_id`` names the run that made a model version.

Models trained before this migration were never approved: they stop scoring
(``active`` false) until QA approves a new training run of their recipe.

Revision ID: 0013_model_approval
Revises: 0012_task_times_finding_key
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0013_model_approval"
down_revision = "0012_task_times_finding_key"
branch_labels = None
depends_on = None

APPEND_ONLY = ("trend_training", "trend_training_decision")


def upgrade() -> None:
    op.create_table(
        "trend_training",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recipe", sa.String(200), nullable=False),
        sa.Column("recipe_version_id", sa.Integer(), sa.ForeignKey("recipe_version.id"), nullable=False),
        sa.Column("trained_by", sa.String(200), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_only", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("report_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_trend_training_recipe", "trend_training", ["recipe"])
    op.create_table(
        "trend_training_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("training_id", sa.Integer(), sa.ForeignKey("trend_training.id"), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("training_id", name="uq_trend_training_decision"),
    )
    with op.batch_alter_table("trend_model") as b:
        b.add_column(sa.Column("training_id", sa.Integer(), nullable=True))
        b.create_foreign_key("fk_trend_model_training", "trend_training", ["training_id"], ["id"])
        b.create_index("ix_trend_model_training_id", ["training_id"])
    # never approved: no model scores until QA approves a training run of its recipe
    op.execute("UPDATE trend_model SET active = false")
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for statement in trigger_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table("trend_model") as b:
        b.drop_index("ix_trend_model_training_id")
        b.drop_constraint("fk_trend_model_training", type_="foreignkey")
        b.drop_column("training_id")
    op.drop_table("trend_training_decision")
    op.drop_index("ix_trend_training_recipe", "trend_training")
    op.drop_table("trend_training")
