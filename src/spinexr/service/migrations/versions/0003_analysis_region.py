"""Analyses keep the spine region their submitter named (for inputs without a body part), so
a requeued analysis is run as it was asked for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("region", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("region")
