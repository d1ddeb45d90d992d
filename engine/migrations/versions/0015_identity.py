"""where a person's identity comes from: local account, LDAP/AD or an OIDC provider

* ``app_user`` gains ``source`` (``local`` for every existing account, ``ldap`` or
  ``oidc``) and ``external_id`` (the directory's own, never-reassigned id of the person:
  ``entryUUID`` / ``objectGUID`` or the OIDC ``sub``), unique per source. A user id
  stays unique across all sources (``app_user.username``), so a person's id is never
  reused whichever source it came from.

Expand-only: the previous release keeps working against this schema (it never reads
the new columns, and a local account it creates gets ``source = 'local'`` by default).

Revision ID: 0015_identity
Revises: 0014_masterdata
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_identity"
down_revision = "0014_masterdata"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as b:
        b.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="local"))
        b.add_column(sa.Column("external_id", sa.String(300), nullable=True))
        b.create_unique_constraint("uq_app_user_external", ["source", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("app_user") as b:
        b.drop_constraint("uq_app_user_external", type_="unique")
        b.drop_column("external_id")
        b.drop_column("source")
