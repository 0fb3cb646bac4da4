"""The LLM simulator, driven through litellm exactly as the engine drives a provider.

Every assertion on an exception class is on the class litellm really raises for the
simulated fault, so these tests also pin litellm's mapping that Ferry's error
taxonomy relies on.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm  # after the cost-map switch: offline, litellm would otherwise fetch prices
from litellm.exceptions import MidStreamFallbackError

import app.devstack.llm_sim as llm_sim
from app.devstack.llm_sim import (
    FaultKind,
    FaultReply,
    JsonReply,
    LLMSimulator,
    Match,
    Rule,
    SequenceReply,
    StepReply,
    TextReply,
    ToolCall,
    ToolCallsReply,
    parse_rules,
    start_simulator_process,
)
from app.devstack.llm_sim.conversation import Conversation
from app.devstack.llm_sim.state import ActiveRule

litellm.suppress_debug_info = True

pytestmark = [
    pytest.mark.timeout(20),
    # litellm's own pydantic models warn about TypedDict ReadOnly items when first used.
    pytest.mark.filterwarnings("ignore:Items? .* the `ReadOnly` qualifier:UserWarning"),
]

USER = [{"role": "user", "content": "Summarise the invoice please"}]


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator() as simulator:
        yield simulator


async def complete(sim: LLMSimulator | str, messages: list[dict[str, Any]] = USER, **kwargs: Any) -> Any:
    base_url = sim if isinstance(sim, str) else sim.base_url
    options: dict[str, Any] = {"model": "openai/sim-model", "timeout": 5, "num_retries": 0, "max_retries": 0}
    return await litellm.acompletion(messages=messages, api_base=base_url, api_key="sim", **(options | kwargs))


async def stream_chunks(sim: LLMSimulator, messages: list[dict[str, Any]] = USER, **kwargs: Any) -> list[Any]:
    response = await complete(sim, messages, stream=True, stream_options={"include_usage": True}, **kwargs)
    return [chunk async for chunk in response]


def assemble_tool_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    """Joins streamed tool-call deltas by index, the way a client must."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["name"] = delta.function.name or call["name"]
                call["arguments"] += delta.function.arguments or ""
    return calls


# -- answers ---------------------------------------------------------------------------


async def test_text_reply_with_deterministic_usage(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=TextReply(text="The total is 42 EUR"))])

    response = await complete(sim)

    assert response.choices[0].message.content == "The total is 42 EUR"
    assert response.choices[0].finish_reason == "stop"
    # prompt: words of all messages; completion: words of the reply.
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (4, 5, 9)


async def test_default_reply_echoes_the_last_user_message(sim: LLMSimulator) -> None:
    response = await complete(sim)

    assert response.choices[0].message.content == "Simulated reply to: Summarise the invoice please"
    assert sim.stats(include_requests=False).default_replies == 1


async def test_tool_schemas_count_as_prompt_tokens(sim: LLMSimulator) -> None:
    tools = [{"type": "function", "function": {"name": "parse_pdf", "parameters": {"type": "object"}}}]

    plain = await complete(sim)
    with_tools = await complete(sim, tools=tools)

    assert with_tools.usage.prompt_tokens == plain.usage.prompt_tokens + len(json.dumps(tools).split())


async def test_streaming_text_with_usage(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=TextReply(text="one two three four"))])

    chunks = await stream_chunks(sim)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert len(chunks) > 3, "the text arrives in several chunks"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if getattr(c, "usage", None)][-1]
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 4)


async def test_json_reply_is_the_serialised_object(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=JsonReply(data={"total": 42.5, "currency": "EUR"}))])

    response = await complete(sim)

    assert json.loads(response.choices[0].message.content) == {"total": 42.5, "currency": "EUR"}


async def test_tool_call(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=ToolCallsReply(calls=[ToolCall(name="parse_pdf", arguments={"file_name": "a.pdf"})]))])

    response = await complete(sim)

    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name) == ("call_sim_1_0", "parse_pdf")
    assert json.loads(call.function.arguments) == {"file_name": "a.pdf"}


PARALLEL = ToolCallsReply(
    calls=[
        ToolCall(name="parse_pdf", arguments={"file_name": "a.pdf"}),
        ToolCall(name="lookup_vendor", arguments={"vat_id": "DE123456789", "country": "DE"}, id="call_vendor"),
    ]
)


async def test_parallel_tool_calls(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=PARALLEL)])

    response = await complete(sim)

    calls = response.choices[0].message.tool_calls
    assert [(c.id, c.function.name) for c in calls] == [("call_sim_1_0", "parse_pdf"), ("call_vendor", "lookup_vendor")]
    assert json.loads(calls[1].function.arguments) == {"vat_id": "DE123456789", "country": "DE"}
    assert response.usage.completion_tokens > 0


async def test_parallel_tool_calls_streaming(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=PARALLEL)])

    chunks = await stream_chunks(sim)

    calls = assemble_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert (calls[0]["id"], calls[0]["name"]) == ("call_sim_1_0", "parse_pdf")
    assert json.loads(calls[0]["arguments"]) == {"file_name": "a.pdf"}
    assert (calls[1]["id"], calls[1]["name"]) == ("call_vendor", "lookup_vendor")
    assert json.loads(calls[1]["arguments"]) == {"vat_id": "DE123456789", "country": "DE"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert any(getattr(c, "usage", None) for c in chunks)


async def test_models_endpoint_lists_known_models() -> None:
    rules = [Rule(match=Match(model="gpt-sim-large"), reply=TextReply(text="big"))]
    async with LLMSimulator(rules) as sim, aiohttp.ClientSession() as http, http.get(f"{sim.base_url}/models") as got:
        body = await got.json()
    assert [m["id"] for m in body["data"]] == ["sim-model", "gpt-sim-large"]


# -- faults ----------------------------------------------------------------------------


async def test_rate_limit_carries_retry_after(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=7))])

    with pytest.raises(litellm.RateLimitError) as caught:
        await complete(sim)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FaultKind.SERVER_ERROR, litellm.InternalServerError),
        (FaultKind.UNAVAILABLE, litellm.ServiceUnavailableError),
        (FaultKind.BAD_REQUEST, litellm.BadRequestError),
        (FaultKind.CONTEXT_LENGTH, litellm.ContextWindowExceededError),
        (FaultKind.AUTH, litellm.AuthenticationError),
        # litellm reports a dropped connection and an unparsable body as InternalServerError,
        # not APIConnectionError: Ferry's error mapping must know this.
        (FaultKind.CONNECTION_RESET, litellm.InternalServerError),
        (FaultKind.MALFORMED_JSON, litellm.InternalServerError),
        (FaultKind.STREAM_CUT, litellm.InternalServerError),
    ],
)
async def test_fault_maps_to_litellm_error(sim: LLMSimulator, fault: FaultKind, error: type[Exception]) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=fault))])

    with pytest.raises(error) as caught:
        await complete(sim)

    assert type(caught.value) is error
    assert sim.calls_total == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FaultKind.RATE_LIMIT, litellm.RateLimitError),
        (FaultKind.CONTEXT_LENGTH, litellm.ContextWindowExceededError),
        (FaultKind.CONNECTION_RESET, litellm.InternalServerError),
        # Once the stream has started, litellm wraps the failure (a ServiceUnavailableError subclass).
        (FaultKind.STREAM_CUT, MidStreamFallbackError),
        (FaultKind.MALFORMED_JSON, MidStreamFallbackError),
    ],
)
async def test_fault_while_streaming(sim: LLMSimulator, fault: FaultKind, error: type[Exception]) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=fault))])

    with pytest.raises(error) as caught:
        await stream_chunks(sim)

    assert type(caught.value) is error


async def test_slow_first_byte_beyond_the_timeout_is_a_litellm_timeout(sim: LLMSimulator) -> None:
    sim.set_rules([Rule(reply=TextReply(text="too late", delay_ms=3000))])

    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        await complete(sim, timeout=0.3)

    assert time.monotonic() - started < 2
    await _until(lambda: sim.in_flight == 0)  # the abandoned handler is cancelled, not left sleeping
    assert sim.requests[0].outcome == "cancelled"


async def test_malformed_request_body_is_a_400_and_recorded(sim: LLMSimulator) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.base_url}/chat/completions", data=b"{not json") as response,
    ):
        assert response.status == 400
    assert [(r.outcome, r.body) for r in sim.requests] == [("400", "{not json")]


# -- scripting -------------------------------------------------------------------------


async def test_sequence_is_consumed_one_step_per_call(sim: LLMSimulator) -> None:
    steps: list[StepReply] = [
        FaultReply(fault=FaultKind.RATE_LIMIT),
        FaultReply(fault=FaultKind.SERVER_ERROR),
        TextReply(text="ok"),
    ]
    sim.set_rules([Rule(reply=SequenceReply(steps=steps), name="flaky")])

    with pytest.raises(litellm.RateLimitError):
        await complete(sim)
    with pytest.raises(litellm.InternalServerError):
        await complete(sim)
    assert (await complete(sim)).choices[0].message.content == "ok"
    assert (await complete(sim)).choices[0].message.content == "ok", "the last step repeats by default"
    assert [r.outcome for r in sim.requests] == ["429", "500", "200", "200"]
    assert sim.stats().rule_hits == {"flaky": 4}


async def test_exhausted_sequence_can_fall_through_to_the_next_rule(sim: LLMSimulator) -> None:
    once = SequenceReply(steps=[TextReply(text="first")], when_exhausted="fall_through")
    sim.set_rules([Rule(reply=once), Rule(reply=TextReply(text="afterwards"))])

    replies = [(await complete(sim)).choices[0].message.content for _ in range(3)]

    assert replies == ["first", "afterwards", "afterwards"]


def test_cycling_sequence_starts_over() -> None:
    rule = Rule(reply=SequenceReply(steps=[TextReply(text="a"), TextReply(text="b")], when_exhausted="cycle"))
    active = ActiveRule(rule, "r")

    replies = [active.next_reply() for _ in range(5)]

    assert [r.text for r in replies if isinstance(r, TextReply)] == ["a", "b", "a", "b", "a"]


async def test_invoice_scenario_tool_call_then_json(sim: LLMSimulator) -> None:
    """What the invoice demo needs: call parse_pdf first, answer JSON once its result is in."""
    sim.set_rules(
        [
            Rule(match=Match(has_tool_result="parse_pdf"), reply=JsonReply(data={"total": 120.0})),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="parse_pdf", arguments={"file_name": "inv-1.pdf"})])),
        ]
    )
    messages: list[dict[str, Any]] = list(USER)

    first = await complete(sim, messages)
    [call] = first.choices[0].message.tool_calls
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "Invoice total 120.00 EUR"})
    second = await complete(sim, messages)

    assert json.loads(second.choices[0].message.content) == {"total": 120.0}
    assert [r.rule for r in sim.requests] == ["rule1", "rule0"]


def conversation(messages: list[dict[str, Any]], model: str = "m") -> Conversation:
    return Conversation.from_body({"model": model, "messages": messages})


CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "You extract invoices."},
    {"role": "user", "content": "Parse invoice INV-2024-17"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "parse_pdf", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "Total: 99"},
    {"role": "user", "content": [{"type": "text", "text": "And the VAT?"}]},
]


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (Match(), True),
        (Match(model="m"), True),
        (Match(model="other"), False),
        (Match(last_user_contains="VAT"), True),
        (Match(last_user_contains="INV-2024"), False),
        (Match(last_user_regex=r"^And the \w+\?$"), True),
        (Match(any_message_contains="INV-2024"), True),
        (Match(any_message_regex=r"Total: \d+"), True),
        (Match(has_tool_result="parse_pdf"), True),
        (Match(has_tool_result="lookup_vendor"), False),
        (Match(assistant_turns=1), True),
        (Match(assistant_turns=0), False),
        (Match(request_number=3), True),
        (Match(request_number=1), False),
        (Match(model="m", has_tool_result="parse_pdf", last_user_contains="nope"), False),
    ],
)
def test_match_predicates(match: Match, expected: bool) -> None:
    assert conversation(CHAT).matches(match, request_number=3) is expected


def test_rules_parse_from_a_document_or_a_bare_list() -> None:
    rule = {"match": {"last_user_contains": "hi"}, "reply": {"kind": "text", "text": "hello"}}

    assert parse_rules(json.dumps({"rules": [rule], "mode": "append"})).mode == "append"
    assert parse_rules(json.dumps([rule])).rules[0].reply == TextReply(text="hello")
    with pytest.raises(ValidationError):
        parse_rules(json.dumps([{"match": {"last_user_contain": "typo"}, "reply": {"kind": "text", "text": "x"}}]))
    with pytest.raises(ValidationError):
        parse_rules(json.dumps([{"match": {"last_user_regex": "("}, "reply": {"kind": "text", "text": "x"}}]))


# -- observations ----------------------------------------------------------------------


async def test_records_requests_and_counts_per_model(sim: LLMSimulator) -> None:
    await complete(sim)
    await complete(sim, model="openai/other-model")
    await complete(sim, model="openai/other-model", stream=True)

    stats = sim.stats()
    assert (stats.calls_total, stats.calls_by_model) == (3, {"sim-model": 1, "other-model": 2})
    first = stats.requests[0]
    assert first.number == 1 and first.body["messages"] == USER
    assert first.headers["Authorization"] == "Bearer sim"
    assert [r.stream for r in stats.requests] == [False, False, True]


async def test_without_recording_the_counters_still_work() -> None:
    async with LLMSimulator(record_requests=False) as sim:
        await complete(sim)
        assert (sim.calls_total, sim.requests) == (1, [])


async def test_peak_concurrency_of_concurrent_calls() -> None:
    async with LLMSimulator(latency_ms=200) as sim:
        await asyncio.gather(*(complete(sim) for _ in range(6)))
        assert (sim.peak_in_flight, sim.in_flight, sim.calls_total) == (6, 0, 6)

        sim.reset()
        cap = asyncio.Semaphore(2)

        async def capped() -> None:
            async with cap:
                await complete(sim)

        started = time.monotonic()
        await asyncio.gather(*(capped() for _ in range(4)))
        assert sim.peak_in_flight == 2
        assert time.monotonic() - started >= 0.4, "two waves of 200 ms"


async def test_rule_latency_adds_to_global_latency() -> None:
    async with LLMSimulator([Rule(reply=TextReply(text="x", delay_ms=100), delay_ms=100)], latency_ms=100) as sim:
        started = time.monotonic()
        await complete(sim)
        assert time.monotonic() - started >= 0.3


# -- control API and process -----------------------------------------------------------


async def test_http_control_api(sim: LLMSimulator) -> None:
    control = sim.root_url + "/_sim"
    rule = {"match": {"last_user_contains": "invoice"}, "reply": {"kind": "text", "text": "from http"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{control}/rules", json={"rules": [rule]}) as response:
            assert (response.status, await response.json()) == (200, {"rules": 1})
        async with http.post(f"{control}/rules", json={"rules": [rule], "mode": "append"}) as response:
            assert await response.json() == {"rules": 2}
        async with http.post(f"{control}/rules", json={"rules": [{"reply": {"kind": "nope"}}]}) as response:
            assert response.status == 400
        async with http.get(f"{control}/rules") as response:
            assert [r["reply"]["text"] for r in (await response.json())["rules"]] == ["from http", "from http"]

        assert (await complete(sim)).choices[0].message.content == "from http"

        async with http.get(f"{control}/stats") as response:
            stats = await response.json()
        assert (stats["calls_total"], stats["peak_in_flight"], stats["rule_hits"]) == (1, 1, {"rule0": 1})
        assert stats["requests"][0]["body"]["model"] == "sim-model"
        async with http.get(f"{control}/stats?requests=0") as response:
            assert (await response.json())["requests"] == []

        async with http.post(f"{control}/config", json={"latency_ms": 50}) as response:
            assert response.status == 200
        assert sim.latency_ms == 50
        async with http.post(f"{control}/reset") as response:
            assert response.status == 200
        assert (sim.rules, sim.calls_total, sim.latency_ms) == ([], 0, 0)


async def test_standalone_process_starts_and_answers() -> None:
    process = await asyncio.to_thread(
        start_simulator_process, [Rule(reply=TextReply(text="from another process"))], latency_ms=10
    )
    try:
        assert process.base_url.startswith("http://127.0.0.1:") and process.base_url.endswith("/v1")
        response = await complete(process.base_url)
        assert response.choices[0].message.content == "from another process"
        async with (
            aiohttp.ClientSession() as http,
            http.get(process.base_url.removesuffix("/v1") + "/_sim/stats") as stats,
        ):
            assert (await stats.json())["calls_total"] == 1
    finally:
        await asyncio.to_thread(process.stop)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(process.base_url + "/models")


def test_public_surface() -> None:
    assert set(llm_sim.__all__) >= {"LLMSimulator", "Rule", "Match", "start_simulator_process", "SimStats"}
    assert all(hasattr(llm_sim, name) for name in llm_sim.__all__)


async def _until(condition: Any, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
