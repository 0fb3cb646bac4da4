"""A trace explains a run's give-ups as well as its retries, its tool calls' arguments
(secrets masked) and the answer an output schema rejected."""

from __future__ import annotations

import json

from app.contracts import RunRequest, RunStatus, SpanEvent, SpanKind, SpanStatus
from app.contracts.errors import (
    AuthError,
    ErrorCategory,
    FerryError,
    LLMUnavailableError,
    RateLimitError,
)
from app.contracts.spans import LAST_ANSWER_CHARS, FallbackSkip, GiveUp, SpanAttr
from app.engine import FakeClock
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call
from tests.unit.engine.conftest import of_kind

RETRY = {"attempts": 3, "initial_delay": 2, "max_delay": 30}


def llm_call(spans: list[SpanEvent]) -> SpanEvent:
    (call,) = of_kind(spans, SpanKind.LLM_CALL)
    return call


async def test_a_retry_after_past_the_deadline_gives_up_and_the_span_says_so(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 30, "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([RateLimitError("come back later", retry_after_seconds=120), "never"], clock=clock)
    spans: list[SpanEvent] = []
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.error is not None and result.error.category is ErrorCategory.RATE_LIMIT
    assert clock.sleeps == [] and len(llm.requests) == 1
    call = llm_call(spans)
    assert call.status is SpanStatus.ERROR
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.RETRY_AFTER_PAST_DEADLINE
    assert call.attributes[SpanAttr.RETRY_AFTER_SECONDS] == 120
    assert call.attributes[SpanAttr.GIVE_UP_WAIT_SECONDS] == 120
    assert call.attributes[SpanAttr.GIVE_UP_REMAINING_SECONDS] == 30
    assert (call.attributes[SpanAttr.ATTEMPTS], call.attributes[SpanAttr.ATTEMPTS_ALLOWED]) == (1, 3)
    assert call.attributes[SpanAttr.FALLBACK_TRIED] is False
    assert call.attributes[SpanAttr.FALLBACK_SKIPPED] == FallbackSkip.NOT_CONFIGURED
    assert of_kind(spans, SpanKind.RETRY_WAIT) == []


async def test_a_back_off_past_the_deadline_is_told_apart_from_retry_after(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 5, "retry_options": {**RETRY, "initial_delay": 10}}])
    clock = FakeClock()
    llm = ScriptedLLM([LLMUnavailableError("503"), "never"], clock=clock)
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    call = llm_call(spans)
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.BACKOFF_PAST_DEADLINE
    assert call.attributes[SpanAttr.GIVE_UP_WAIT_SECONDS] == 10
    assert SpanAttr.RETRY_AFTER_SECONDS not in call.attributes


async def test_attempts_used_against_allowed_and_the_waits_reasons(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM(
        [RateLimitError("slow down", retry_after_seconds=7), LLMUnavailableError("503"), LLMUnavailableError("503")],
        clock=clock,
    )
    spans: list[SpanEvent] = []
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert result.error is not None and result.error.category is ErrorCategory.LLM_UNAVAILABLE
    call = llm_call(spans)
    assert (call.attributes[SpanAttr.ATTEMPTS], call.attributes[SpanAttr.ATTEMPTS_ALLOWED]) == (3, 3)
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.ATTEMPTS_EXHAUSTED
    waits = of_kind(spans, SpanKind.RETRY_WAIT)
    assert [(w.attributes[SpanAttr.REASON], w.attributes.get(SpanAttr.RETRY_AFTER_SECONDS)) for w in waits] == [
        ("rate_limit", 7),
        ("llm_unavailable", None),
    ]


async def test_a_successful_step_counts_its_attempts_and_gives_nothing_up(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    clock = FakeClock()
    llm = ScriptedLLM([LLMUnavailableError("503"), "ok"], clock=clock)
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    call = llm_call(spans)
    assert (call.attributes[SpanAttr.ATTEMPTS], call.attributes[SpanAttr.ATTEMPTS_ALLOWED]) == (2, 3)
    assert SpanAttr.GIVE_UP not in call.attributes and SpanAttr.FALLBACK_TRIED not in call.attributes


async def test_a_non_retryable_category_gives_up_at_once(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "retry_options": RETRY}])
    llm = ScriptedLLM([AuthError("bad key"), "never"])
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=FakeClock()).run(RunRequest.new("a", "hi"), on_span=spans.append)
    call = llm_call(spans)
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.NOT_RETRYABLE
    assert (call.attributes[SpanAttr.ATTEMPTS], call.attributes[SpanAttr.ATTEMPTS_ALLOWED]) == (1, 3)


async def test_the_fallback_tried_says_why_and_its_give_up(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup", "retry_options": RETRY}]
    )
    clock = FakeClock()
    llm = ScriptedLLM(
        {"openai/primary": [AuthError("revoked")], "openai/backup": [LLMUnavailableError("down")] * 3}, clock=clock
    )
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    call = llm_call(spans)
    assert call.attributes[SpanAttr.FALLBACK_TRIED] is True and SpanAttr.FALLBACK_SKIPPED not in call.attributes
    assert call.attributes[SpanAttr.FALLBACK_MODEL] == "openai/backup"
    assert call.attributes[SpanAttr.FALLBACK_REASON] == "auth"
    # 1 primary attempt + the fallback's 3: all used, and the fallback's give-up is the step's.
    assert (call.attributes[SpanAttr.ATTEMPTS], call.attributes[SpanAttr.ATTEMPTS_ALLOWED]) == (4, 4)
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.ATTEMPTS_EXHAUSTED


async def test_the_fallback_not_tried_for_an_error_no_provider_would_fix(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "model": "openai/primary", "fallback_model": "openai/backup"}])
    llm = ScriptedLLM({"openai/primary": [FerryError("a bug")], "openai/backup": ["never"]})
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=FakeClock()).run(RunRequest.new("a", "hi"), on_span=spans.append)
    call = llm_call(spans)
    assert llm.models == ["openai/primary"]
    assert call.attributes[SpanAttr.FALLBACK_TRIED] is False
    assert call.attributes[SpanAttr.FALLBACK_SKIPPED] == FallbackSkip.NOT_A_PROVIDER_ERROR
    assert call.attributes[SpanAttr.GIVE_UP] == GiveUp.NOT_RETRYABLE


async def test_the_fallback_not_tried_once_the_deadline_has_passed(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 10, "model": "openai/primary", "fallback_model": "openai/backup"}])
    clock = FakeClock()

    def slow_primary(request):
        if request.model == "openai/primary":
            clock.advance(11)  # the primary's answer comes after the run's deadline
            raise LLMUnavailableError("down")
        return "never"

    llm = FunctionLLM(slow_primary, clock=clock)
    spans: list[SpanEvent] = []
    await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"), on_span=spans.append)
    assert llm.models == ["openai/primary"]
    call = llm_call(spans)
    assert call.attributes[SpanAttr.FALLBACK_TRIED] is False
    assert call.attributes[SpanAttr.FALLBACK_SKIPPED] == FallbackSkip.DEADLINE_PASSED


TOOLS = {
    "t": '''
        def lookup(customer: str, api_key: str, note: dict | None = None) -> dict:
            """Look a customer up."""
            return {"customer": customer, "plan": "gold"}


        def charge(card_number: str, amount: float) -> str:
            """Charge a card."""
            raise RuntimeError("card declined")

        charge.secret_arguments = ["card_number"]


        def vault(pin: str) -> str:
            """Open the vault."""
            return "open"

        vault.secret_arguments = True
    '''
}


async def test_tool_spans_carry_their_arguments_with_secrets_masked(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "tools": ["t.lookup", "t.charge", "t.vault"]}], tools=TOOLS)
    llm = ScriptedLLM(
        [
            Reply(
                tool_calls=[
                    tool_call(
                        "lookup",
                        {"customer": "ACME", "api_key": "k-4f3e2d1c0b", "note": {"password": "pw-778899"}},
                    ),
                    tool_call("charge", {"card_number": "4111111111111111", "amount": 12.5}),
                    tool_call("vault", {"pin": "pin-246810"}),
                ]
            ),
            "done",
        ]
    )
    spans: list[SpanEvent] = []
    result = await engine_for(project, llm).run(RunRequest.new("a", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    tools = {s.attributes[SpanAttr.TOOL]: s for s in of_kind(spans, SpanKind.TOOL_CALL)}
    lookup = json.loads(tools["lookup"].attributes[SpanAttr.TOOL_ARGUMENTS])
    assert lookup == {"customer": "ACME", "api_key": "[REDACTED]", "note": {"password": "[REDACTED]"}}
    assert tools["lookup"].attributes[SpanAttr.TOOL_RESULT_CHARS] == len('{"customer": "ACME", "plan": "gold"}')
    charge = json.loads(tools["charge"].attributes[SpanAttr.TOOL_ARGUMENTS])
    assert charge == {"card_number": "[REDACTED]", "amount": 12.5}
    assert tools["charge"].attributes[SpanAttr.ERROR_CATEGORY] == "tool_error"
    assert "card declined" in tools["charge"].attributes[SpanAttr.ERROR_MESSAGE]
    assert SpanAttr.TOOL_ARGUMENTS not in tools["vault"].attributes  # every argument declared secret
    dumped = "".join(s.model_dump_json() for s in spans)
    for secret in ("k-4f3e2d1c0b", "pw-778899", "4111111111111111", "pin-246810"):
        assert secret not in dumped


async def test_arguments_of_an_unknown_tool_are_shown_and_long_ones_clipped(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "tools": ["t.lookup"]}], tools=TOOLS)
    llm = ScriptedLLM(
        [
            Reply(
                tool_calls=[tool_call("delete_all", {"really": True}), tool_call("lookup", {"customer": "x" * 5000})]
            ),
            "done",
        ]
    )
    spans: list[SpanEvent] = []
    await engine_for(project, llm).run(RunRequest.new("a", "go"), on_span=spans.append)
    tools = {s.attributes[SpanAttr.TOOL]: s for s in of_kind(spans, SpanKind.TOOL_CALL)}
    assert json.loads(tools["delete_all"].attributes[SpanAttr.TOOL_ARGUMENTS]) == {"really": True}
    assert tools["delete_all"].status is SpanStatus.ERROR
    clipped = tools["lookup"].attributes[SpanAttr.TOOL_ARGUMENTS]
    assert len(clipped) == 2000 and clipped.endswith("…")


INVOICE = {
    "type": "object",
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
    "required": ["vendor", "total"],
}


async def test_output_validation_keeps_the_last_answer(make_project, engine_for, monkeypatch) -> None:
    monkeypatch.setenv("FERRY_TEST_VENDOR_TOKEN", "tok-5e6f7a8b9c")
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 2}}], schemas={"invoice": INVOICE}
    )
    rejected = '{"vendor": "ACME tok-5e6f7a8b9c", "total": "twelve"}'
    answers = iter(['{"vendor": "first"}', rejected])
    llm = FunctionLLM(lambda request: next(answers))
    spans: list[SpanEvent] = []
    result = await engine_for(project, llm).run(RunRequest.new("x", "extract"), on_span=spans.append)
    assert result.error is not None and result.error.category is ErrorCategory.OUTPUT_VALIDATION
    last = '{"vendor": "ACME [REDACTED]", "total": "twelve"}'
    assert result.error.details == {"last_answer": last, "last_answer_chars": len(rejected)}
    validations = of_kind(spans, SpanKind.OUTPUT_VALIDATION)
    assert [v.attributes[SpanAttr.LAST_ANSWER] for v in validations] == ['{"vendor": "first"}', last]
    assert all(v.status is SpanStatus.ERROR for v in validations)
    assert "tok-5e6f7a8b9c" not in result.model_dump_json() + "".join(s.model_dump_json() for s in spans)
    # The detail travels on the wire and reads back; a result without it still reads.
    assert type(result).model_validate_json(result.model_dump_json()).error == result.error


async def test_a_long_last_answer_is_clipped_with_its_length_kept(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 1}}], schemas={"invoice": INVOICE}
    )
    answer = "I think the vendor is " + "very " * 2000
    result = await engine_for(project, FunctionLLM(lambda request: answer)).run(RunRequest.new("x", "extract"))
    assert result.error is not None and result.error.details is not None
    assert len(result.error.details["last_answer"]) == LAST_ANSWER_CHARS
    assert result.error.details["last_answer"].startswith("I think the vendor is very")
    assert result.error.details["last_answer_chars"] == len(answer)


async def test_other_failures_carry_no_details(make_project, engine_for) -> None:
    project = make_project([{"name": "a"}])
    result = await engine_for(project, ScriptedLLM([AuthError("no key")])).run(RunRequest.new("a", "hi"))
    assert result.error is not None and result.error.details is None
