"""Provider failures end to end: the simulator's HTTP faults, litellm, Ferry's categories."""

from __future__ import annotations

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import FaultKind, FaultReply, Match, Rule, SequenceReply, TextReply
from app.engine import FakeClock

RETRY = {"attempts": 3, "initial_delay": 2, "max_delay": 30}


async def test_retries_wait_exactly_and_honour_retry_after(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    sim.set_rules(
        [
            Rule(
                reply=SequenceReply(
                    steps=[
                        FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=7),
                        FaultReply(fault=FaultKind.UNAVAILABLE),
                        TextReply(text="finally"),
                    ]
                )
            )
        ]
    )
    clock = FakeClock()
    spans = []
    result = await engine_factory(project, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "finally"
    assert sim.calls_total == 3
    # 1st wait: Retry-After 7 s beats the 2 s back-off; 2nd wait: back-off 4 s.
    assert clock.sleeps == [7, 4]
    waits = [s for s in spans if s.kind is SpanKind.RETRY_WAIT]
    assert [(w.attributes["wait_seconds"], w.attributes["reason"]) for w in waits] == [
        (7, "rate_limit"),
        (4, "llm_unavailable"),
    ]
    attempts = [s for s in spans if s.kind is SpanKind.LLM_ATTEMPT]
    assert [a.attributes.get("error.category") for a in attempts] == ["rate_limit", "llm_unavailable", None]
    run = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run.attributes["llm_retries"] == 2


async def test_exhausted_retries_fail_with_the_provider_category(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    sim.set_rules([Rule(reply=FaultReply(fault=FaultKind.SERVER_ERROR))])
    clock = FakeClock()
    result = await engine_factory(project, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.LLM_UNAVAILABLE
    assert result.error.retryable is True
    assert sim.calls_total == 3
    assert clock.sleeps == [2, 4]


@pytest.mark.parametrize(
    ("fault", "category"),
    [
        (FaultKind.BAD_REQUEST, ErrorCategory.LLM_BAD_REQUEST),
        (FaultKind.AUTH, ErrorCategory.AUTH),
        (FaultKind.CONTEXT_LENGTH, ErrorCategory.CONTEXT_LENGTH),
    ],
)
async def test_non_retryable_errors_are_tried_once(make_project, sim, engine_factory, fault, category) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    sim.set_rules([Rule(reply=FaultReply(fault=fault))])
    clock = FakeClock()
    result = await engine_factory(project, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is category and not result.error.retryable
    assert sim.calls_total == 1
    assert clock.sleeps == []


async def test_connection_reset_is_retried_as_unavailable(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    sim.set_rules(
        [Rule(reply=SequenceReply(steps=[FaultReply(fault=FaultKind.CONNECTION_RESET), TextReply(text="ok")]))]
    )
    result = await engine_factory(project, clock=FakeClock()).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.COMPLETED and sim.calls_total == 2


async def test_fallback_model_gets_the_retry_budget(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup", "retry_options": RETRY}]
    )
    sim.set_rules(
        [
            Rule(match=Match(model="primary"), reply=FaultReply(fault=FaultKind.UNAVAILABLE)),
            Rule(
                match=Match(model="backup"),
                reply=SequenceReply(
                    steps=[
                        FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=1),
                        FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=1),
                        TextReply(text="from backup"),
                    ]
                ),
            ),
        ]
    )
    clock = FakeClock()
    spans = []
    result = await engine_factory(project, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "from backup"
    # The primary is tried once, then the fallback gets all 3 attempts of the budget.
    assert sim.calls_by_model == {"primary": 1, "backup": 3}
    assert clock.sleeps == [2, 4]  # no wait before switching; back-off between fallback attempts
    call = next(s for s in spans if s.kind is SpanKind.LLM_CALL)
    assert call.attributes["model"] == "openai/backup"
    assert call.attributes["fallback_reason"] == "llm_unavailable"


async def test_fallback_also_covers_a_non_retryable_primary_error(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup"}])
    sim.set_rules(
        [
            Rule(match=Match(model="primary"), reply=FaultReply(fault=FaultKind.CONTEXT_LENGTH)),
            Rule(match=Match(model="backup"), reply=TextReply(text="bigger window")),
        ]
    )
    result = await engine_factory(project, clock=FakeClock()).run(RunRequest.new("a", "hi"))
    assert result.output == "bigger window"
    assert sim.calls_by_model == {"primary": 1, "backup": 1}


async def test_retry_after_beyond_the_deadline_fails_fast(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "timeout": 30, "retry_options": RETRY}])
    sim.set_rules([Rule(reply=FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=120))])
    clock = FakeClock()
    result = await engine_factory(project, clock=clock).run(RunRequest.new("a", "hi"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.RATE_LIMIT
    assert sim.calls_total == 1 and clock.sleeps == []


async def test_llm_middleware_sees_every_attempt(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    sim.set_rules([Rule(reply=SequenceReply(steps=[FaultReply(fault=FaultKind.UNAVAILABLE), TextReply(text="ok")]))])
    seen: list[tuple[str, str]] = []

    class Gate:
        def __init__(self, inner) -> None:
            self.inner = inner

        async def complete(self, request):
            seen.append(("before", request.model))
            response = await self.inner.complete(request)
            seen.append(("after", response.text))
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    engine = engine_factory(project, clock=FakeClock(), llm_middleware=Gate)
    result = await engine.run(RunRequest.new("a", "hi"))
    assert result.output == "ok"
    assert seen == [("before", "openai/sim-model"), ("before", "openai/sim-model"), ("after", "ok")]


async def test_missing_provider_key_is_auth_not_retried(make_project, monkeypatch) -> None:
    from app.engine import Engine, EngineSettings

    monkeypatch.delenv("FERRY_LLM_BASE_URL", raising=False)
    project = make_project([{"name": "a", "model": "gemini/gemini-2.5-flash", "retry_options": RETRY}])
    clock = FakeClock()
    engine = Engine(project, settings=EngineSettings(), clock=clock)
    try:
        result = await engine.run(RunRequest.new("a", "hi"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.AUTH
    assert "GEMINI_API_KEY" in result.error.message and "\n" not in result.error.message
    assert clock.sleeps == []
