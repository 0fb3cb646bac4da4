"""A tool call waiting for a human: the records of the compacted `ferry.approvals` topic.

One record per run, keyed by run id: `pending` when a worker parks the run, then
`approved`, `rejected` or `expired` once decided. The record carries the parked request,
so whoever decides (the CLI, the API, the expiry of a worker) produces it again, with the
decision added, to the topic it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.contracts.runs import RunRequest

ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]


class ApprovalRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    run_id: str
    agent: str
    tenant: str
    step: str  # `<llm step>.<call id>`: where the run stopped, the key of its decision
    tool: str
    arguments: dict[str, Any]  # as the model wrote them, secrets masked
    message: str | None = None  # the agent's `approval.message`, for the approver
    on_rejection: Literal["fail", "continue"] = "fail"
    requested_at: datetime
    expires_at: datetime
    status: ApprovalStatus = "pending"
    decided_by: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None
    topic: str  # where the parked request came from, and goes back to
    key: str | None = None  # its record key (the concurrency key)
    request: RunRequest
