"""OIDC sign-in: pending requests to the provider and one-time signing grants

* ``oidc_request``: a sign-in or re-authentication sent to the OIDC provider (state as
  SHA-256, the browser it belongs to, nonce, PKCE verifier, used once, expires);
* ``oidc_signing_grant``: an OIDC person's fresh re-authentication, good for one
  signature from one browser session.

Expand-only (new tables): the previous release keeps working against this schema.

Revision ID: 0016_oidc
Revises: 0016_server
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_oidc"
down_revision = "0016_server"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_request",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("browser", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("username", sa.String(100), nullable=True),
        sa.Column("next_url", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_oidc_request_created_at", "oidc_request", ["created_at"])
    op.create_table(
        "oidc_signing_grant",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_oidc_signing_grant_username", "oidc_signing_grant", ["username"])


def downgrade() -> None:
    op.drop_index("ix_oidc_signing_grant_username", "oidc_signing_grant")
    op.drop_table("oidc_signing_grant")
    op.drop_index("ix_oidc_request_created_at", "oidc_request")
    op.drop_table("oidc_request")
