"""Connic's knowledge tools (retrieval_*): chunks of entries per tenant, environment and namespace.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from app.observability.history.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ferry_knowledge",
        sa.Column("tenant", sa.String(), primary_key=True),
        sa.Column("environment", sa.String(), primary_key=True),
        sa.Column("namespace", sa.String(), primary_key=True),
        sa.Column("entry_id", sa.String(), primary_key=True),
        sa.Column("chunk_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "entry_metadata",
            sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ferry_knowledge")
