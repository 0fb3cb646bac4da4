"""Trace events: one message on `runs.traces` per finished span of a run."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SpanKind(StrEnum):
    RUN = "run"
    PIPELINE_STEP = "pipeline_step"
    LLM_CALL = "llm_call"
    LLM_ATTEMPT = "llm_attempt"
    TOOL_CALL = "tool_call"
    OUTPUT_VALIDATION = "output_validation"
    RETRY_WAIT = "retry_wait"


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
