"""Runs and spans.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.observability.history.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ferry_runs",
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("deployment", sa.String(), nullable=True),
        sa.Column("trigger_source", sa.String(), nullable=False),
        sa.Column("trigger_metadata", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("pipeline", sa.String(), nullable=True),
        sa.Column("stage", sa.BigInteger(), nullable=True),
        sa.Column("root_run_id", sa.String(), nullable=False),
        sa.Column("parent_run_id", sa.String(), nullable=True),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("llm_calls", sa.BigInteger(), nullable=False),
        sa.Column("tool_calls", sa.BigInteger(), nullable=False),
        sa.Column("error_category", sa.String(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("output", sa.JSON(none_as_null=True), nullable=True),
    )
    op.create_index("ix_ferry_runs_started_at", "ferry_runs", ["started_at"])
    op.create_index("ix_ferry_runs_ended_at", "ferry_runs", ["ended_at"])
    op.create_index("ix_ferry_runs_agent_started_at", "ferry_runs", ["agent", "started_at"])
    op.create_index("ix_ferry_runs_tenant_started_at", "ferry_runs", ["tenant", "started_at"])
    op.create_index("ix_ferry_runs_root_run_id", "ferry_runs", ["root_run_id"])

    op.create_table(
        "ferry_spans",
        sa.Column("span_id", sa.String(), primary_key=True),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("parent_span_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("end_time", UtcDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error_category", sa.String(), nullable=True),
        sa.Column("attributes", sa.JSON(none_as_null=True), nullable=False),
    )
    op.create_index("ix_ferry_spans_run_id", "ferry_spans", ["run_id"])
    op.create_index("ix_ferry_spans_trace_id", "ferry_spans", ["trace_id"])
    op.create_index("ix_ferry_spans_end_time", "ferry_spans", ["end_time"])
    op.create_index("ix_ferry_spans_kind_start_time", "ferry_spans", ["kind", "start_time"])


def downgrade() -> None:
    op.drop_table("ferry_spans")
    op.drop_table("ferry_runs")
