"""Spend alerts: the messages on `ferry.alerts`.

One record per alert, keyed by `alert_id`. The id is a pure function of what the alert
is about (limit, subject, period, threshold), so every worker names the same alert the
same way: a worker that finds the id on the topic knows it was already sent, and a
consumer that sees it twice (a rare race, see docs/observability.md) can drop the copy.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.contracts.runs import utc_now


class AlertKind(StrEnum):
    THRESHOLD = "threshold"  # a share of a spend limit was reached
    SPIKE = "spike"  # a day's spend is far above the trailing daily average


class SpendAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    alert_id: str
    kind: AlertKind
    scope: Literal["project", "agent", "tenant"]
    subject: str | None = None  # the agent or tenant; None for the project
    each: bool = False  # the limit has no name: it holds for each agent / tenant on its own
    period: Literal["day", "month"]
    period_key: str  # the UTC day `2026-05-04` or month `2026-05`
    threshold_pct: int | None = None  # THRESHOLD: 50, 80, 100…
    limit_usd: float | None = None  # THRESHOLD: the limit
    spent_usd: float  # spend in the period when the alert was raised
    average_usd: float | None = None  # SPIKE: the trailing daily average
    factor: float | None = None  # SPIKE: the factor it exceeded
    history_days: int | None = None  # SPIKE: days the average covers
    message: str
    created_at: datetime = Field(default_factory=utc_now)
