"""Trace events: one message on `runs.traces` per finished span of a run."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field


class SpanKind(StrEnum):
    RUN = "run"
    PIPELINE_STEP = "pipeline_step"
    LLM_CALL = "llm_call"
    LLM_ATTEMPT = "llm_attempt"
    TOOL_CALL = "tool_call"
    OUTPUT_VALIDATION = "output_validation"
    RETRY_WAIT = "retry_wait"


class SpanAttr:
    """Names of the keys of `SpanEvent.attributes`: they travel on `runs.traces`, so a
    name never changes once shipped; code that writes or reads a span uses these."""

    # Every span
    ERROR_CATEGORY: Final = "error.category"
    ERROR_MESSAGE: Final = "error.message"
    ERROR_TIMEOUT_SECONDS: Final = "error.timeout_seconds"
    """The limit that ran out, on spans failed by a timeout (tool_timeout, timeout)."""
    # run
    AGENT: Final = "agent"
    TENANT: Final = "tenant"
    STATUS: Final = "status"
    LLM_CALLS: Final = "llm_calls"
    TOOL_CALLS: Final = "tool_calls"
    LLM_RETRIES: Final = "llm_retries"
    # run, llm_call and llm_attempt: usage
    PROMPT_TOKENS: Final = "llm.prompt_tokens"
    COMPLETION_TOKENS: Final = "llm.completion_tokens"
    TOTAL_TOKENS: Final = "llm.total_tokens"
    COST_USD: Final = "cost_usd"
    # llm_call and llm_attempt
    MODEL: Final = "model"
    LLM_STEP: Final = "llm.step"
    ESTIMATED_PROMPT_TOKENS: Final = "llm.estimated_prompt_tokens"
    FALLBACK_MODEL: Final = "fallback_model"
    FALLBACK_REASON: Final = "fallback_reason"
    ATTEMPT: Final = "attempt"
    # llm_call: attempts against the policy, the fallback, and why the step gave up
    ATTEMPTS: Final = "llm.attempts"
    """Attempts made by the step, the primary's and the fallback's together."""
    ATTEMPTS_ALLOWED: Final = "llm.attempts_allowed"
    """Attempts the retry policy allowed the step (with a fallback: 1 for the primary + the fallback's)."""
    FALLBACK_TRIED: Final = "fallback.tried"
    """Set when the primary failed and a fallback exists or could have: whether it was called."""
    FALLBACK_SKIPPED: Final = "fallback.skipped"
    """Why the fallback was not called after the primary failed: a `FallbackSkip` value."""
    GIVE_UP: Final = "llm.give_up"
    """On a failed step: why it stopped retrying, a `GiveUp` value."""
    GIVE_UP_WAIT_SECONDS: Final = "llm.give_up.wait_seconds"
    """The wait the next attempt needed (Retry-After or back-off) when it would pass the deadline."""
    GIVE_UP_REMAINING_SECONDS: Final = "llm.give_up.remaining_seconds"
    """Time left before the run's deadline when the step gave up for it."""
    # retry_wait
    WAIT_SECONDS: Final = "wait_seconds"
    AFTER_ATTEMPT: Final = "after_attempt"
    REASON: Final = "reason"
    RETRY_AFTER_SECONDS: Final = "retry_after_seconds"
    # tool_call
    TOOL: Final = "tool"
    TOOL_CALL_ID: Final = "tool.call_id"
    TOOL_RESULT_CHARS: Final = "tool.result_chars"
    TOOL_ARGUMENTS: Final = "tool.arguments"
    """The model's arguments as JSON, secret ones masked, clipped (`TOOL_ARGUMENTS_CHARS`);
    absent for a tool that declares every argument secret."""
    # output_validation
    VALID: Final = "valid"
    REASK: Final = "reask"
    LAST_ANSWER: Final = "output.last_answer"
    """On a rejected answer: the model's text, redacted and clipped to `LAST_ANSWER_CHARS`."""
    LAST_ANSWER_CHARS: Final = "output.last_answer_chars"
    """The rejected answer's full length, so a reader knows whether it was clipped."""
    # pipeline_step (with AGENT: the stage's agent)
    STAGE: Final = "stage"


#: Longest `SpanAttr.TOOL_ARGUMENTS` value; longer ones end in "…".
TOOL_ARGUMENTS_CHARS: Final = 2000
#: Longest last answer kept in a span and in an output_validation result's error details.
LAST_ANSWER_CHARS: Final = 4000


class GiveUp(StrEnum):
    """Why an LLM step (or a tool agent's call) stopped retrying."""

    NOT_RETRYABLE = "not_retryable"
    """The error's category is never retried (auth, llm_bad_request, …)."""
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    RETRY_AFTER_PAST_DEADLINE = "retry_after_past_deadline"
    """The provider's Retry-After would have the next attempt start after the run's deadline."""
    BACKOFF_PAST_DEADLINE = "backoff_past_deadline"
    """The back-off wait would have the next attempt start after the run's deadline."""


class FallbackSkip(StrEnum):
    """Why the fallback model was not called after the primary failed."""

    NOT_CONFIGURED = "not_configured"
    """The agent has no `fallback_model`."""
    NOT_A_PROVIDER_ERROR = "not_a_provider_error"
    """The primary failed with a category another provider would not fix (internal, …)."""
    DEADLINE_PASSED = "deadline_passed"
    """The run's deadline had passed when the primary gave up."""


class GenAIAttr:
    """OpenTelemetry GenAI semantic-convention names that spans exported over OTLP carry
    next to Ferry's own (`SpanAttr`), so a collector's GenAI views read Ferry's runs.
    `runs.traces` keeps Ferry's names only: these are derived when a span is exported."""

    OPERATION_NAME: Final = "gen_ai.operation.name"
    """invoke_agent (run, pipeline_step), chat (llm_call, llm_attempt), execute_tool (tool_call)."""
    PROVIDER_NAME: Final = "gen_ai.provider.name"
    SYSTEM: Final = "gen_ai.system"
    """The older name of PROVIDER_NAME, which many backends still read: both are written."""
    REQUEST_MODEL: Final = "gen_ai.request.model"
    RESPONSE_MODEL: Final = "gen_ai.response.model"
    INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
    OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
    AGENT_NAME: Final = "gen_ai.agent.name"
    TOOL_NAME: Final = "gen_ai.tool.name"
    TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
    TOOL_TYPE: Final = "gen_ai.tool.type"
    ERROR_TYPE: Final = "error.type"
    """OpenTelemetry's general error attribute: Ferry's error category."""


class SpanStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


class SpanEvent(BaseModel):
    """A finished span. `attributes` holds model, tokens, cost, tool, error category…,
    always with secrets redacted before the event is built."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    run_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    kind: SpanKind
    name: str
    status: SpanStatus = SpanStatus.OK
    start: datetime
    end: datetime
    duration_ms: float
    attributes: dict[str, Any] = Field(default_factory=dict)
