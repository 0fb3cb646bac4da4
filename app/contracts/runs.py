"""Run requests and run results: the messages on `agent.<name>.requests` and `runs.results`."""

from __future__ import annotations

import base64
import mimetypes
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.contracts.errors import ErrorCategory, FerryError

#: Namespace of run ids derived from idempotency keys: the same key gives the same run.
_RUN_ID_NAMESPACE = uuid.UUID("6f1c2a9e-3b7d-4f0a-9a51-0c6e2d7b8f41")


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_id_for(agent: str, idempotency_key: str | None) -> str:
    """A deterministic id for an idempotency key, a fresh one otherwise."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{agent}\x00{idempotency_key}"))


def document_input(name: str, data: bytes, mime_type: str | None = None) -> dict[str, Any]:
    """A run input carrying one document in the `files` form tools read (AGENT_FORMAT "Payloads")."""
    mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"files": [{"name": name, "mime_type": mime, "data": base64.b64encode(data).decode()}]}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Trigger(_Wire):
    source: str = "api"
    metadata: dict[str, Any] = Field(default_factory=dict)


class PipelineBudget(_Wire):
    """A pipeline's `budget` limits, as they were when the pipeline started."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None


class PipelineContext(_Wire):
    """Where a run stands in a pipeline, carried from stage to stage.

    Over Kafka each stage is its own run on its own topic, possibly in another worker:
    what the stages must share travels here instead of in memory, so the pipeline
    behaves as it does in one process. `started_at` and `usage` (spent by the stages
    before this one) let the pipeline's result report its whole duration and usage;
    `budget` with `usage` is what the pipeline's budget leaves for this stage. The
    pipeline's deadline travels as the stage request's own `deadline`.
    """

    pipeline: str
    stage: int = Field(ge=0)
    root_run_id: str
    parent_run_id: str | None = None
    started_at: datetime | None = None
    usage: Usage | None = None
    budget: PipelineBudget | None = None  # new in schema 1: absent in older records = no pipeline budget


class ChatTurn(_Wire):
    """One earlier message of a conversation, as the model sees it (a chat socket's history)."""

    role: Literal["user", "assistant"]
    content: str


class ApprovalDecision(_Wire):
    """A human's answer to one tool call of a run that asked for approval."""

    approved: bool
    by: str = "unknown"
    reason: str | None = None
    decided_at: datetime = Field(default_factory=utc_now)
    timed_out: bool = False


class RunRequest(_Wire):
    schema_version: Literal[1] = 1
    run_id: str
    agent: str
    input: dict[str, Any]
    tenant: str = "default"
    trigger: Trigger = Field(default_factory=Trigger)
    callback_url: str | None = None
    idempotency_key: str | None = None
    deployment: str | None = None
    deadline: datetime | None = None
    pipeline: PipelineContext | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    # New in schema 1 (absent in older records: no history, no live caller):
    history: list[ChatTurn] = Field(default_factory=list)
    """The conversation before this message: the model sees it between the system prompt
    and the input."""
    reply_to: str | None = None
    """A live caller's own topic (one per API instance): the worker also produces the
    run's answer there as it is written (`stream`) and its result (`app.contracts.replies`)."""
    stream: bool = False
    approvals: dict[str, ApprovalDecision] = Field(default_factory=dict)
    """Decisions on this run's approval-gated tool calls, by step (`<llm step>.<call id>`):
    a parked run is produced again with the new decision added (new in schema 1)."""

    @field_validator("input", mode="before")
    @classmethod
    def _wrap_non_object(cls, value: Any) -> Any:
        """A run's input is an object: any other JSON value arrives as `{"message": value}`,
        wherever the request comes from (`ferry run`, `ferry submit`, a producer's record)."""
        return value if isinstance(value, Mapping) else {"message": value}

    @classmethod
    def new(cls, agent: str, input: Any, **fields: Any) -> RunRequest:
        """Build a request (a non-object input becomes `{"message": value}`)."""
        run_id = fields.pop("run_id", None) or run_id_for(agent, fields.get("idempotency_key"))
        return cls(run_id=run_id, agent=agent, input=input, **fields)


class RunStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"
    #: Between a worker and its processor only, never on `runs.results`: the run reached a
    #: tool call that needs a human's approval and is parked until someone decides.
    PAUSED = "paused"


class RunError(_Wire):
    category: ErrorCategory
    message: str
    retryable: bool = False
    details: dict[str, Any] | None = None
    """What helps debug the failure, by category; new in schema 1 (absent in older records).
    output_validation: `last_answer` (the model's rejected text, at most 4000 characters)
    and `last_answer_chars` (its full length)."""

    @classmethod
    def from_exception(cls, exc: FerryError) -> RunError:
        details = getattr(exc, "details", None)
        return cls(
            category=exc.category,
            message=exc.message,
            retryable=exc.retryable,
            details=dict(details) if isinstance(details, Mapping) else None,
        )


class Usage(BaseModel):
    """Tokens and cost of a run or of one LLM call. Mutable: the run loop adds to it.

    `cost_usd` is None when any priced call had no known price: Ferry never reports a
    made-up number.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = 0.0
    llm_calls: int = 0
    tool_calls: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.llm_calls += other.llm_calls
        self.tool_calls += other.tool_calls
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd


class RunResult(_Wire):
    schema_version: Literal[1] = 1
    run_id: str
    agent: str
    status: RunStatus
    output: Any = None
    partial: bool = False
    error: RunError | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: datetime
    ended_at: datetime
    duration_ms: float
    tenant: str = "default"
    deployment: str | None = None
    trigger: Trigger = Field(default_factory=Trigger)
    pipeline: PipelineContext | None = None
    callback_url: str | None = None  # new in schema 1: the request's, for the webhook connector
    queued_at: datetime | None = None  # new in schema 1: the request's created_at (queue wait = started - queued)

    @classmethod
    def for_request(
        cls,
        request: RunRequest,
        status: RunStatus,
        *,
        started_at: datetime,
        ended_at: datetime,
        duration_ms: float | None = None,
        **fields: Any,
    ) -> RunResult:
        """The result of `request`: identity, tenant, deployment, trigger, pipeline and callback URL come
        from the request, so every producer of results (engine, scheduler, pipeline) reports
        them the same way. `duration_ms` defaults to the wall time between the two instants."""
        carried: dict[str, Any] = {
            "run_id": request.run_id,
            "agent": request.agent,
            "tenant": request.tenant,
            "deployment": request.deployment,
            "trigger": request.trigger,
            "pipeline": request.pipeline,
            "callback_url": request.callback_url,
            "queued_at": request.created_at,
        }
        if duration_ms is None:
            duration_ms = max(0.0, (ended_at - started_at).total_seconds() * 1000.0)
        return cls(
            status=status,
            started_at=started_at,
            ended_at=ended_at,
            duration_ms=duration_ms,
            **(carried | fields),
        )
