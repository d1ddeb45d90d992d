"""recipe lifecycle: effective date and approvers of a recipe version

Statuses become draft → in_review → approved → effective → superseded / retired. A
version keeps when it becomes the one new batches take (``effective_from``) and who
signed its approval. Existing approved versions get ``effective_from`` = their creation
time and stay ``approved``: the engine makes the newest of each recipe effective (and the
older ones superseded) the first time it is read, with an audit entry for each change.

Revision ID: 0010_recipe_lifecycle
Revises: 0009_batch_migrations
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_recipe_lifecycle"
down_revision = "0009_batch_migrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recipe_version") as b:
        b.add_column(sa.Column("effective_from", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("approved_by", sa.JSON(), nullable=True))
        b.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE recipe_version SET effective_from = created_at WHERE status = 'approved'")


def downgrade() -> None:
    op.execute("UPDATE recipe_version SET status = 'approved' WHERE status IN ('effective', 'superseded')")
    op.execute("UPDATE recipe_version SET status = 'draft' WHERE status = 'in_review'")
    with op.batch_alter_table("recipe_version") as b:
        for column in ("approved_at", "approved_by", "effective_from"):
            b.drop_column(column)
