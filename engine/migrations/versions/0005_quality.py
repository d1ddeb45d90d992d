"""quality: exceptions with category, rule-set severity and dispositions; batch release

``batch_exception`` gains its category, the value and limits shown to the reviewer, who
raised it, what the rule set in force said (signatures, blocks release, deviation) and
when it closed. Severities become minor / major / critical: existing rows are mapped
(limit alert -> ``limit.alert`` minor, limit action -> ``limit.action`` major, trend ->
``oot.value``/``oot.duration``, incident -> ``incident`` major). New append-only tables:
``exception_disposition`` (QA's e-signed decisions) and ``batch_disposition`` (release or
rejection); ``quality_rule_set`` holds the versioned rules.

Revision ID: 0005_quality
Revises: 0004_audit_integrity
"""

import sqlalchemy as sa
from alembic import op

from engine.append_only import trigger_statements

revision = "0005_quality"
down_revision = "0004_audit_integrity"
branch_labels = None
depends_on = None

APPEND_ONLY = ("exception_disposition", "batch_disposition")


def _signed_columns() -> list[sa.Column]:
    return [
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(50), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("batch_exception") as b:
        b.add_column(sa.Column("category", sa.String(40), nullable=False, server_default="limit.alert"))
        b.add_column(sa.Column("value", sa.JSON(), nullable=True))
        b.add_column(sa.Column("limits", sa.JSON(), nullable=True))
        b.add_column(sa.Column("raised_by", sa.String(200), nullable=False, server_default="system"))
        b.add_column(sa.Column("rule_set_version", sa.Integer(), nullable=True))
        b.add_column(sa.Column("signatures_required", sa.Integer(), nullable=False, server_default="1"))
        b.add_column(sa.Column("blocks_release", sa.Boolean(), nullable=False, server_default=sa.true()))
        b.add_column(sa.Column("opens_deviation", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    ex = "batch_exception"
    op.execute(
        f"UPDATE {ex} SET category = 'limit.action', severity = 'major' WHERE source = 'limit' AND severity = 'action'"
    )
    op.execute(
        f"UPDATE {ex} SET category = 'limit.alert', severity = 'minor' WHERE source = 'limit' AND severity = 'alert'"
    )
    op.execute(
        f"UPDATE {ex} SET category = 'oot.value', severity = CASE WHEN severity = 'action' THEN 'critical' "
        "ELSE 'minor' END WHERE source = 'trend'"
    )
    op.execute(f"UPDATE {ex} SET category = 'incident', severity = 'major' WHERE source = 'incident'")
    op.execute(f"UPDATE {ex} SET status = 'accepted' WHERE status = 'reviewed'")
    op.create_table(
        "exception_disposition",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("exception_id", sa.Integer(), sa.ForeignKey("batch_exception.id"), nullable=False, index=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        *_signed_columns(),
        sa.Column("rule_set_version", sa.Integer(), nullable=True),
    )
    op.create_table(
        "batch_disposition",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batch.id"), nullable=False, index=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        *_signed_columns(),
    )
    op.create_table(
        "quality_rule_set",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False, unique=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(100), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    )
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for statement in trigger_statements(table, dialect):
            op.execute(statement)


def downgrade() -> None:
    for table in ("quality_rule_set", "batch_disposition", "exception_disposition"):
        op.drop_table(table)
    with op.batch_alter_table("batch_exception") as b:
        for column in (
            "closed_at",
            "opens_deviation",
            "blocks_release",
            "signatures_required",
            "rule_set_version",
            "raised_by",
            "limits",
            "value",
            "category",
        ):
            b.drop_column(column)
