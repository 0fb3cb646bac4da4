"""Connic's document store (the db_* tools).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from app.observability.history.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ferry_documents",
        sa.Column("tenant", sa.String(), primary_key=True),
        sa.Column("environment", sa.String(), primary_key=True),
        sa.Column("collection", sa.String(), primary_key=True),
        sa.Column("doc_id", sa.String(), primary_key=True),
        sa.Column(
            "data", sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=False
        ),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ferry_documents")
