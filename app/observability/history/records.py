"""What readers of the history get: frozen pydantic records, JSON-ready.

The CLI, and later the API and the dashboard, read these and never the ORM rows, so the
tables can change behind them (a migration) without touching any reader.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class RunRecord(_Record):
    run_id: str
    kind: str
    agent: str
    status: str
    tenant: str
    deployment: str | None
    trigger_source: str
    trigger_metadata: dict[str, Any]
    pipeline: str | None
    stage: int | None
    root_run_id: str
    parent_run_id: str | None
    queued_at: datetime | None
    started_at: datetime
    ended_at: datetime
    duration_ms: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None
    llm_calls: int
    tool_calls: int
    error_category: str | None
    error_message: str | None
    error_retryable: bool
    partial: bool
    output: Any = None


class SpanRecord(_Record):
    span_id: str
    trace_id: str
    parent_span_id: str | None
    run_id: str
    kind: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error_category: str | None
    attributes: dict[str, Any]


class UsageLine(_Record):
    """Tokens and cost of one group (an agent, a model, a tenant or a UTC day).

    `count` is runs, except by model where it is LLM calls. `cost_usd` sums the known
    costs; `unpriced` counts those without a known price, so a reader can tell a partial
    sum from a total (Ferry never makes a price up).
    """

    key: str
    count: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    unpriced: int = 0


class PruneReport(_Record):
    runs: int
    spans: int
