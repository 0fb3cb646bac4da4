"""Provider failures as the engine sees them: retries, exact waits, Retry-After, fallback, middleware."""

from __future__ import annotations

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import (
    AuthError,
    ContextLengthError,
    ErrorCategory,
    FerryError,
    LLMBadRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitError,
)
from app.engine import FakeClock, LLMClient, LLMRequest, LLMResponse
from app.engine.testing import FunctionLLM, ScriptedLLM
from tests.unit.engine.conftest import MODEL, of_kind

RETRY = {"attempts": 3, "initial_delay": 2, "max_delay": 30}


async def test_retries_wait_exactly_and_honour_retry_after(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM(
        [RateLimitError("slow down", retry_after_seconds=7), LLMUnavailableError("503"), "finally"], clock=clock
    )
    spans = []
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "finally"
    assert len(llm.requests) == 3 and llm.remaining == 0
    # 1st wait: Retry-After 7 s beats the 2 s back-off; 2nd wait: back-off 4 s.
    assert clock.sleeps == [7, 4]
    waits = of_kind(spans, SpanKind.RETRY_WAIT)
    assert [
        (w.attributes["wait_seconds"], w.attributes["reason"], w.attributes.get("retry_after_seconds")) for w in waits
    ] == [(7, "rate_limit", 7), (4, "llm_unavailable", None)]
    attempts = of_kind(spans, SpanKind.LLM_ATTEMPT)
    assert [a.attributes.get("error.category") for a in attempts] == ["rate_limit", "llm_unavailable", None]
    run = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run.attributes["llm_retries"] == 2
    # Every attempt asks the same conversation again.
    assert llm.requests[0].messages == llm.requests[1].messages == llm.requests[2].messages


async def test_exhausted_retries_fail_with_the_provider_category(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([LLMUnavailableError("500")] * 3, clock=clock)
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.LLM_UNAVAILABLE
    assert result.error.retryable is True and result.error.message == "500"
    assert len(llm.requests) == 3
    assert clock.sleeps == [2, 4]


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (LLMBadRequestError("bad"), ErrorCategory.LLM_BAD_REQUEST),
        (AuthError("no key"), ErrorCategory.AUTH),
        (ContextLengthError("too long"), ErrorCategory.CONTEXT_LENGTH),
    ],
)
async def test_non_retryable_errors_are_tried_once(make_project, engine_for, error, category) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([error, "never asked"], clock=clock)
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is category and not result.error.retryable
    assert len(llm.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("error", [LLMTimeoutError("slow"), LLMUnavailableError("reset by peer")])
async def test_timeouts_and_unavailability_are_retried(make_project, engine_for, error) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([error, "ok"], clock=clock)
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.COMPLETED and result.output == "ok"
    assert len(llm.requests) == 2 and clock.sleeps == [2]


async def test_fallback_model_gets_the_retry_budget(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup", "retry_options": RETRY}]
    )
    clock = FakeClock()
    llm = ScriptedLLM(
        {
            "openai/primary": [LLMUnavailableError("down")],
            "openai/backup": [
                RateLimitError("busy", retry_after_seconds=1),
                RateLimitError("busy", retry_after_seconds=1),
                "from backup",
            ],
        },
        clock=clock,
    )
    spans = []
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "from backup"
    # The primary is tried once, then the fallback gets all 3 attempts of the budget.
    assert llm.models == ["openai/primary", "openai/backup", "openai/backup", "openai/backup"]
    assert clock.sleeps == [2, 4]  # no wait before switching; back-off between fallback attempts
    call = next(s for s in spans if s.kind is SpanKind.LLM_CALL)
    assert call.attributes["model"] == "openai/backup"
    assert call.attributes["fallback_reason"] == "llm_unavailable"


async def test_fallback_also_covers_a_non_retryable_primary_error(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup"}])
    llm = ScriptedLLM({"openai/primary": [ContextLengthError("too long")], "openai/backup": ["bigger window"]})
    result = await engine_for(project, llm, clock=FakeClock()).run(RunRequest.new("a", "hi"))
    assert result.output == "bigger window"
    assert llm.models == ["openai/primary", "openai/backup"]


async def test_no_fallback_for_an_error_that_is_not_the_provider(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup"}])
    llm = ScriptedLLM({"openai/primary": [FerryError("a bug")], "openai/backup": ["never"]})
    result = await engine_for(project, llm, clock=FakeClock()).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.INTERNAL
    assert llm.models == ["openai/primary"]


async def test_retry_after_beyond_the_deadline_fails_fast(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 30, "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([RateLimitError("come back later", retry_after_seconds=120), "never"], clock=clock)
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.RATE_LIMIT
    assert len(llm.requests) == 1 and clock.sleeps == []


async def test_each_attempt_gets_the_time_left_of_the_run(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 30, "retry_options": {**RETRY, "attempt_timeout": 20}}])
    clock = FakeClock()
    llm = ScriptedLLM([LLMTimeoutError("slow"), LLMTimeoutError("slow"), "ok"], clock=clock, latency=5)
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.COMPLETED
    # 20 s cap while 30 s remain; after 5 + 2 + 5 + 4 s, only 14 s are left for the third.
    assert [r.timeout for r in llm.requests] == [20, 20, 14]


async def test_llm_middleware_sees_every_attempt(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    seen: list[tuple[str, str | None]] = []

    class Gate:
        def __init__(self, inner: LLMClient) -> None:
            self.inner = inner

        async def complete(self, request: LLMRequest) -> LLMResponse:
            seen.append(("before", request.model))
            response = await self.inner.complete(request)
            seen.append(("after", response.text))
            return response

    clock = FakeClock()
    llm = ScriptedLLM([LLMUnavailableError("503"), "ok"], clock=clock)
    result = await engine_for(project, llm, clock=clock, llm_middleware=Gate).run(RunRequest.new("a", "hi"))
    assert result.output == "ok"
    assert seen == [("before", MODEL), ("before", MODEL), ("after", "ok")]


async def test_an_unexpected_exception_from_the_client_is_internal_not_raised(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])

    def broken(request: LLMRequest) -> str:
        raise KeyError("choices")

    llm = FunctionLLM(broken)
    result = await engine_for(project, llm, clock=FakeClock()).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.INTERNAL
    assert "KeyError" in result.error.message and len(llm.requests) == 1
