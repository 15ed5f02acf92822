"""The heartbeat row of the readiness write probe; audit rows name their subject (a key id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("subject", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("subject")
    op.drop_table("heartbeat")
