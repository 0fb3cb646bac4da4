"""Provider failures end to end through litellm: the simulator's Retry-After header becomes
the engine's wait, a missing provider key is `auth`. The engine's retry and fallback
behaviour is tested on the in-process fake (tests/unit/engine/test_model_failures.py),
the mapping of every fault in test_litellm_client.py."""

from __future__ import annotations

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import FaultKind, FaultReply, Rule, SequenceReply, TextReply
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
