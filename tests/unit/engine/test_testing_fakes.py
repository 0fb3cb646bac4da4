"""The in-process fakes keep the model contract, so tests on them mean what they say."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.contracts.errors import InternalError, LLMTimeoutError, RateLimitError
from app.engine import FakeClock, LLMRequest, LLMResponse, LLMUsage, ToolCall
from app.engine.pricing import ModelPrice
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call


def _request(model: str = "openai/m", messages: int = 2, timeout: float = 120.0) -> LLMRequest:
    return LLMRequest(
        model=model, messages=[{"role": "user", "content": str(i)} for i in range(messages)], timeout=timeout
    )


async def test_a_script_plays_in_order_and_records_every_request() -> None:
    error = RateLimitError("slow down", retry_after_seconds=3)
    llm = ScriptedLLM([error, "hello", Reply(tool_calls=[tool_call("add", {"a": 1})])])
    with pytest.raises(RateLimitError) as raised:
        await llm.complete(_request())
    assert raised.value is error and raised.value.retry_after_seconds == 3
    text = await llm.complete(_request())
    assert (text.text, text.tool_calls, text.finish_reason, text.model) == ("hello", (), "stop", "openai/m")
    calls = await llm.complete(_request(messages=3))
    assert calls.tool_calls == (ToolCall(id="call_3_0", name="add", arguments='{"a": 1}'),)
    assert calls.finish_reason == "tool_calls" and calls.text is None
    assert len(llm.requests) == 3 and llm.remaining == 0


async def test_a_call_past_the_script_is_an_internal_error() -> None:
    llm = ScriptedLLM(["only one"])
    await llm.complete(_request())
    with pytest.raises(InternalError, match="no step left for 'openai/m' \\(call 2\\)"):
        await llm.complete(_request())


async def test_a_mapping_scripts_each_model_on_its_own() -> None:
    llm = ScriptedLLM({"openai/a": ["a1", "a2"], "openai/b": ["b1"]})
    answers = [(await llm.complete(_request(model))).text for model in ("openai/a", "openai/b", "openai/a")]
    assert answers == ["a1", "b1", "a2"]
    assert llm.models == ["openai/a", "openai/b", "openai/a"]
    with pytest.raises(InternalError):
        await llm.complete(_request("openai/c"))


async def test_usage_is_counted_per_message_and_priced_when_asked() -> None:
    llm = ScriptedLLM(["x", "y"], tokens_per_message=7, price=ModelPrice(0.01, 0.1))
    response = await llm.complete(_request(messages=3))
    assert response.usage == LLMUsage(prompt_tokens=21, completion_tokens=7, cost_usd=pytest.approx(0.21 + 0.7))
    unpriced = await FunctionLLM(lambda request: "z").complete(_request(messages=1))
    assert unpriced.usage == LLMUsage(prompt_tokens=10, completion_tokens=10, cost_usd=None)
    told = Reply(text="t", usage=LLMUsage(prompt_tokens=1, completion_tokens=2, cost_usd=0.5))
    assert (await ScriptedLLM([told]).complete(_request())).usage == told.usage


async def test_latency_is_spent_on_the_clock_and_past_the_timeout_is_llm_timeout() -> None:
    clock = FakeClock()
    llm = ScriptedLLM(["quick", Reply(text="slow", latency=9), "never"], clock=clock, latency=2)
    assert (await llm.complete(_request())).text == "quick"
    with pytest.raises(LLMTimeoutError, match="within 5s"):
        await llm.complete(_request(timeout=5))
    assert clock.sleeps == [2, 5]  # the slow answer gave up at the request's timeout


async def test_an_error_comes_after_the_latency_as_from_a_server() -> None:
    clock = FakeClock()
    llm = ScriptedLLM([RateLimitError("429")], clock=clock, latency=1.5)
    with pytest.raises(RateLimitError):
        await llm.complete(_request())
    assert clock.sleeps == [1.5]


async def test_a_function_sees_the_request_and_may_await() -> None:
    gate = asyncio.Event()

    async def answer(request: LLMRequest) -> Reply:
        await gate.wait()
        return Reply(text=json.dumps([m["content"] for m in request.messages]))

    llm = FunctionLLM(answer)
    pending = asyncio.create_task(llm.complete(_request(messages=2)))
    await asyncio.sleep(0)
    assert not pending.done() and len(llm.requests) == 1  # recorded as soon as asked
    gate.set()
    assert json.loads((await pending).text or "") == ["0", "1"]


async def test_a_complete_response_is_returned_as_is() -> None:
    response = LLMResponse(model="openai/other", text="as is", finish_reason="length")
    assert await FunctionLLM(lambda request: response).complete(_request()) is response


def test_tool_call_arguments_as_the_model_writes_them() -> None:
    assert tool_call("f", {"a": [1, 2]}).arguments == '{"a": [1, 2]}'
    assert tool_call("f", '{"broken": ').arguments == '{"broken": '
    assert tool_call("f").arguments == "{}" and tool_call("f", id="c9").id == "c9"
