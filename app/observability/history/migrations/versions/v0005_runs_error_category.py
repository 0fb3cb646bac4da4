"""Failed runs by error category, newest first: the dashboard's "find the failing runs".

Without it a page of a rare category walks the start-time index through every run until
it has found fifty (~100 ms at 100,000 runs, growing with the history); with it, ~8 ms
(bench/bench_dashboard.py). Partial: only failed runs are in it, so recording a
successful run costs nothing more.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FAILED = sa.text("error_category IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_ferry_runs_error_category_started_at",
        "ferry_runs",
        ["error_category", "started_at"],
        sqlite_where=_FAILED,
        postgresql_where=_FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_ferry_runs_error_category_started_at", table_name="ferry_runs")
