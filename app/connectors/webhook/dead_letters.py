"""`webhooks.dlq`: deliveries that failed for good, kept whole so that a replay resends them.

An entry carries the envelope as it was sent (a replay sends the same body and the same
delivery id, under a fresh timestamp and signature), the destination's identity (to
find its secret again: secrets never travel through Kafka) and why it failed. The key is
the delivery id, so the entries of one delivery stay in order on one partition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.contracts.runs import utc_now


class WebhookDeadLetter(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    delivery_id: str
    run_id: str
    destination: str = Field(description="`callback:<url>` or `connector:<name>`.")
    url: str
    envelope: dict[str, Any]
    reason: str
    attempts: int = Field(ge=0)
    failed_at: datetime = Field(default_factory=utc_now)
