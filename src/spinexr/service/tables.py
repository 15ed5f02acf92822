"""The service's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create them;
``tests/service/test_store.py`` checks that the two agree."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Status values of an analysis.
STATUSES = ("queued", "running", "done", "failed", "refused")
ROLES = ("submit", "read", "admin")

analyses = sa.Table(
    "analyses", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("created", sa.DateTime, nullable=False, index=True),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("input_sha256", sa.String(64), nullable=False),
    sa.Column("input_size", sa.BigInteger, nullable=False),
    sa.Column("explain", sa.String(64), nullable=False, server_default=""),
    sa.Column("region", sa.String(16), nullable=False, server_default=""),
    sa.Column("pack_name", sa.String(128), nullable=False),
    sa.Column("pack_version", sa.String(64), nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
)

#: Uploaded files, kept while their analysis is queued (or always with ``store_inputs``).
inputs = sa.Table(
    "inputs", metadata,
    sa.Column("analysis_id", sa.String(32),
              sa.ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("filename", sa.String(255), nullable=False, server_default=""),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

renditions = sa.Table(
    "renditions", metadata,
    sa.Column("analysis_id", sa.String(32),
              sa.ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("media_type", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("salt", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.DateTime, nullable=True),
)

#: Append-only: the store never updates or deletes these rows (retention does not touch them).
audit = sa.Table(
    "audit", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime, nullable=False, index=True),
    sa.Column("key_name", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("analysis_id", sa.String(32), nullable=True),
    sa.Column("input_sha256", sa.String(64), nullable=True),
    sa.Column("pack_version", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(64), nullable=False),
    # what the action was about when it is not an analysis: an API key's id (never a secret)
    sa.Column("subject", sa.String(64), nullable=True),
)

#: One row, rewritten by the readiness probe and at start-up to prove the store takes writes.
heartbeat = sa.Table(
    "heartbeat", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.DateTime, nullable=False),
)
