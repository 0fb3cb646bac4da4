"""Cassettes: a replay answers as recorded, and says in words what changed when a request differs."""

from __future__ import annotations

import pytest

from app.agent_tests.cassette import CassetteRun, Exchange, explain_difference, request_data
from app.agent_tests.cassette_clients import RecordingClient, ReplayClient
from app.contracts.errors import LLMBadRequestError, RateLimitError
from app.engine.journal import recorded_response as response_data
from app.engine.model import LLMRequest, LLMResponse
from app.engine.testing import Reply, ScriptedLLM, tool_call

TOOL = {"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}}}


def _request(**changes: object) -> LLMRequest:
    fields: dict[str, object] = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Use the calculator tools."},
            {"role": "user", "content": '{"a": 4, "b": 6}'},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c1", "name": "add", "content": "10"},
        ],
        "tools": [TOOL],
        "temperature": 0.0,
    }
    fields.update(changes)
    return LLMRequest(**fields)  # type: ignore[arg-type]


def _messages(index: int, content: str) -> list[dict[str, object]]:
    messages = [dict(m) for m in _request().messages]
    messages[index]["content"] = content
    return messages


@pytest.mark.parametrize(
    ("changed", "said"),
    [
        (_request(model="openai/gpt-4o"), "the model changed: recorded 'openai/gpt-4o-mini', now 'openai/gpt-4o'"),
        (_request(tools=[]), "the tools offered changed: removed add"),
        (
            _request(tools=[{**TOOL, "function": {**TOOL["function"], "description": "Sum."}}]),
            "the schema of tool 'add' changed",
        ),
        (_request(messages=_messages(0, "Use the tools.")), "the system prompt changed: recorded"),
        (_request(messages=_messages(1, '{"a": 5, "b": 6}')), "the input (user message) changed"),
        (_request(messages=_messages(3, "11")), 'the result of tool add changed: recorded "10", now "11"'),
        (_request(messages=_request().messages[:2]), "the conversation has 2 messages, 4 were recorded"),
        (_request(temperature=0.7), "temperature changed: recorded 0.0, now 0.7"),
    ],
)
def test_the_first_difference_is_said_in_words(changed: LLMRequest, said: str) -> None:
    explained = explain_difference(request_data(_request()), request_data(changed))
    assert explained is not None and said in explained


def test_the_same_request_is_no_difference_whatever_its_timeout() -> None:
    assert explain_difference(request_data(_request()), request_data(_request(timeout=3.0))) is None


async def test_recording_keeps_answers_and_provider_errors_and_a_replay_gives_them_back() -> None:
    real = ScriptedLLM(
        [RateLimitError("slow down", retry_after_seconds=7), Reply(tool_calls=[tool_call("add", {"a": 1})]), "done"]
    )
    recorder = RecordingClient(real)
    with pytest.raises(RateLimitError):
        await recorder.complete(_request())
    first = await recorder.complete(_request())
    second = await recorder.complete(_request(model="openai/gpt-4o"))

    replay = ReplayClient(recorder.run)
    with pytest.raises(RateLimitError) as raised:
        await replay.complete(_request())
    assert raised.value.retry_after_seconds == 7
    assert response_data(await replay.complete(_request())) == response_data(first)
    assert response_data(await replay.complete(_request(model="openai/gpt-4o"))) == response_data(second)
    assert replay.mismatch is None and replay.unplayed() == 0


async def test_a_replay_that_goes_off_its_recording_fails_every_later_call_the_same_way() -> None:
    recorded = CassetteRun(
        exchanges=[Exchange(request=request_data(_request()), response=response_data(LLMResponse(model="m", text="x")))]
    )
    replay = ReplayClient(recorded)
    with pytest.raises(LLMBadRequestError, match="the model changed"):
        await replay.complete(_request(model="gemini/gemini-2.5-flash"))
    with pytest.raises(LLMBadRequestError, match="LLM call 1: the model changed"):
        await replay.complete(_request())  # a fallback or a retry cannot hide the first difference
    assert replay.mismatch is not None and replay.mismatch.startswith("LLM call 1: the model changed")


async def test_a_call_past_the_recording_is_a_mismatch() -> None:
    replay = ReplayClient(CassetteRun())
    with pytest.raises(LLMBadRequestError):
        await replay.complete(_request())
    assert replay.mismatch == "LLM call 1 was not recorded (the cassette has 0 for this run)"
