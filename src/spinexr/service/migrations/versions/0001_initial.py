"""Initial schema: analyses, inputs, renditions, api_keys, audit.

Revision ID: 0001
Revises:
Create Date: 2026-02-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analyses",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("created", sa.DateTime, nullable=False, index=True),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("input_size", sa.BigInteger, nullable=False),
        sa.Column("explain", sa.String(64), nullable=False, server_default=""),
        sa.Column("pack_name", sa.String(128), nullable=False),
        sa.Column("pack_version", sa.String(64), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
    )
    op.create_table(
        "inputs",
        sa.Column("analysis_id", sa.String(32),
                  sa.ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False, server_default=""),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "renditions",
        sa.Column("analysis_id", sa.String(32),
                  sa.ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("revoked", sa.DateTime, nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime, nullable=False, index=True),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("analysis_id", sa.String(32), nullable=True),
        sa.Column("input_sha256", sa.String(64), nullable=True),
        sa.Column("pack_version", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for name in ("audit", "api_keys", "renditions", "inputs", "analyses"):
        op.drop_table(name)
