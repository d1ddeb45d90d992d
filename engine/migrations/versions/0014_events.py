"""MQTT event subscribers: a topic prefix and a broker account on ``event_subscriber``

An MQTT subscriber keeps its broker URL (``mqtt://`` or ``mqtts://``) in ``url``; the
password of its broker account is encrypted like a webhook secret (``password_encrypted``,
under the subscriber key file). Webhook and QMS subscribers leave the three columns empty.

Revision ID: 0014_events
Revises: 0014_plant_foundation (re-chained to 0014_plant_foundation at merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_events"
down_revision = "0014_plant_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_subscriber") as batch:
        batch.add_column(sa.Column("topic_prefix", sa.String(200), nullable=True))
        batch.add_column(sa.Column("username", sa.String(200), nullable=True))
        batch.add_column(sa.Column("password_encrypted", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_subscriber") as batch:
        batch.drop_column("password_encrypted")
        batch.drop_column("username")
        batch.drop_column("topic_prefix")
