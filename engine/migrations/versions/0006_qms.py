"""the QMS link: event subscribers (secrets encrypted), deviations, inbound QMS messages

``event_subscriber`` holds webhook and QMS receivers configured without code; the secret
is Fernet-encrypted under a key file outside the database (engine/qms/secrets.py).
``qms_deviation`` links an exception to the QMS's deviation (one per exception).
``qms_inbound_event`` keeps each verified QMS message once (unique webhook id: a replay
has no second effect).

Revision ID: 0006_qms
Revises: 0005_quality (re-chained onto 0005_quality on merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_qms"
down_revision = "0005_quality"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_subscriber",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )
    op.create_table(
        "qms_deviation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("exception_id", sa.Integer(), sa.ForeignKey("batch_exception.id"), nullable=False, unique=True),
        sa.Column("qms", sa.String(length=100), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("capa", sa.String(length=100), nullable=True),
        sa.Column("opened_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )
    op.create_table(
        "qms_inbound_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(length=200), nullable=False, unique=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("event_subscriber.id"), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("qms_inbound_event")
    op.drop_table("qms_deviation")
    op.drop_table("event_subscriber")
