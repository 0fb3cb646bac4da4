"""What the API sends and accepts: pydantic models, so the OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.contracts import RunResult
from app.observability.history.records import RunRecord


class RunCreate(BaseModel):
    """The body of `POST /v1/agents/{agent}/runs`."""

    model_config = ConfigDict(extra="forbid")

    input: Any = Field(description="The run's input: a JSON object.")
    callback_url: str | None = Field(default=None, description="Where the result is POSTed when the run ends.")
    context: dict[str, Any] = Field(default_factory=dict, description="Values the agent's tools see as context.")
    key: str | None = Field(default=None, description="Concurrency / Kafka record key (default: the agent's).")


class RunAccepted(BaseModel):
    run_id: str
    status: Literal["queued"] = "queued"


class CancelAccepted(BaseModel):
    """A cancel on its way to the workers: the run ends `cancelled` (or finishes first)."""

    run_id: str
    status: Literal["cancelling"] = "cancelling"


class RunErrorView(BaseModel):
    category: str
    message: str
    retryable: bool


class UsageView(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None
    llm_calls: int
    tool_calls: int


class TimingsView(BaseModel):
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None


class RunView(BaseModel):
    """A run as the history holds it; `queued` when accepted but no result is recorded yet."""

    run_id: str
    agent: str
    tenant: str
    status: str
    output: Any = None
    partial: bool = False
    error: RunErrorView | None = None
    usage: UsageView | None = None
    timings: TimingsView
    deployment: str | None = None
    pipeline: str | None = None
    stage: int | None = None

    @classmethod
    def of(cls, run: RunRecord) -> RunView:
        error = (
            RunErrorView(category=run.error_category, message=run.error_message or "", retryable=run.error_retryable)
            if run.error_category
            else None
        )
        return cls(
            run_id=run.run_id,
            agent=run.agent,
            tenant=run.tenant,
            status=run.status,
            output=run.output,
            partial=run.partial,
            error=error,
            usage=UsageView(
                prompt_tokens=run.prompt_tokens,
                completion_tokens=run.completion_tokens,
                total_tokens=run.total_tokens,
                cost_usd=run.cost_usd,
                llm_calls=run.llm_calls,
                tool_calls=run.tool_calls,
            ),
            timings=TimingsView(
                queued_at=run.queued_at, started_at=run.started_at, ended_at=run.ended_at, duration_ms=run.duration_ms
            ),
            deployment=run.deployment,
            pipeline=run.pipeline,
            stage=run.stage,
        )

    @classmethod
    def of_result(cls, result: RunResult) -> RunView:
        """A result as it arrives from a worker, before the history has it (a chat answer)."""
        error = result.error
        usage = result.usage
        return cls(
            run_id=result.run_id,
            agent=result.agent,
            tenant=result.tenant,
            status=result.status.value,
            output=result.output,
            partial=result.partial,
            error=RunErrorView(category=error.category.value, message=error.message, retryable=error.retryable)
            if error
            else None,
            usage=UsageView(**usage.model_dump()),
            timings=TimingsView(
                queued_at=result.queued_at,
                started_at=result.started_at,
                ended_at=result.ended_at,
                duration_ms=result.duration_ms,
            ),
            deployment=result.deployment,
            pipeline=result.pipeline.pipeline if result.pipeline else None,
            stage=result.pipeline.stage if result.pipeline else None,
        )

    @classmethod
    def queued(cls, run_id: str, agent: str, tenant: str, accepted_at: datetime) -> RunView:
        return cls(
            run_id=run_id,
            agent=agent,
            tenant=tenant,
            status="queued",
            timings=TimingsView(queued_at=accepted_at, started_at=None, ended_at=None, duration_ms=None),
        )


class RunPage(BaseModel):
    runs: list[RunView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class AgentView(BaseModel):
    name: str
    type: str
    description: str


class AgentList(BaseModel):
    agents: list[AgentView]
