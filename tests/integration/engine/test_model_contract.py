"""The model interface's contract (app/engine/model.py), one suite for every client behind it.

Each test runs against both paths — the direct OpenAI-protocol client and the litellm
client — over real HTTP to the LLM simulator (or, for the Retry-After forms the
simulator does not send, a one-route aiohttp server), so an agent behaves the same
whichever path its model takes.
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from app.contracts.errors import (
    AuthError,
    ContextLengthError,
    FerryError,
    LLMBadRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitError,
)
from app.devstack.llm_sim import (
    FaultKind,
    FaultReply,
    JsonReply,
    LLMSimulator,
    Match,
    Rule,
    TextReply,
    ToolCall,
    ToolCallsReply,
)
from app.devstack.llm_sim.embeddings import embed_text
from app.engine.llm import LiteLLMClient
from app.engine.model import Embedder, LLMClient, LLMRequest
from app.engine.openai_compat import EndpointTable, OpenAICompatClient
from app.engine.price_map import list_price

pytestmark = pytest.mark.integration

MODEL = "openai/sim-model"
KEY = "sim-key"

ClientFactory = Callable[[str], LLMClient]  # base URL → client calling every model there


def _direct(base_url: str) -> LLMClient:
    return OpenAICompatClient.for_base_url(base_url, KEY)


def _litellm(base_url: str) -> LLMClient:
    return LiteLLMClient(base_url=base_url, api_key=KEY)


@pytest.fixture(params=[_direct, _litellm], ids=["direct", "litellm"])
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[ClientFactory]:
    built: list[LLMClient] = []

    def build(base_url: str) -> LLMClient:
        client = request.param(base_url)
        built.append(client)
        return client

    yield build
    for client in built:
        close: Callable[[], Awaitable[None]] | None = getattr(client, "aclose", None)
        if close is not None:
            await close()


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator() as simulator:
        yield simulator


@pytest.fixture
def client(sim: LLMSimulator, make_client: ClientFactory) -> LLMClient:
    return make_client(sim.base_url)


def ask(text: str = "one two three", **fields: object) -> LLMRequest:
    return LLMRequest(model=MODEL, messages=[{"role": "user", "content": text}], timeout=10, **fields)  # type: ignore[arg-type]


ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}


async def test_text_answer_with_usage(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=TextReply(text="alpha beta"))])
    response = await client.complete(ask("one two three"))
    assert response.text == "alpha beta"
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    assert response.model == MODEL
    # the simulator counts words: 3 in the prompt, 2 in the answer
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (3, 2)
    assert response.usage.cost_usd is None  # a routed call reports no price of the alias it called
    sent = sim.requests[-1]
    assert sent.model == "sim-model"  # the provider prefix is stripped for the server
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


async def test_tool_call_then_its_result(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules(
        [
            Rule(match=Match(has_tool_result="add"), reply=TextReply(text="three")),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="add", arguments={"a": 1, "b": 2}, id="call_1")])),
        ]
    )
    first = await client.complete(ask("add one and two", tools=[ADD_TOOL], tool_choice="auto"))
    assert first.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in first.tool_calls] == [("call_1", "add", {"a": 1, "b": 2})]
    assert sim.requests[-1].body["tools"] == [ADD_TOOL]
    assert sim.requests[-1].body["tool_choice"] == "auto"

    messages = [
        {"role": "user", "content": "add one and two"},
        first.assistant_message(),
        {"role": "tool", "tool_call_id": "call_1", "content": "3"},
    ]
    second = await client.complete(LLMRequest(model=MODEL, messages=messages, tools=[ADD_TOOL], timeout=10))
    assert second.text == "three" and second.tool_calls == ()


async def test_parallel_tool_calls_keep_their_order_and_ids(sim: LLMSimulator, client: LLMClient) -> None:
    calls = [ToolCall(name="add", arguments={"a": i, "b": i}) for i in range(3)]
    sim.set_rules([Rule(reply=ToolCallsReply(calls=calls))])
    response = await client.complete(ask("add three pairs", tools=[ADD_TOOL]))
    assert [json.loads(c.arguments)["a"] for c in response.tool_calls] == [0, 1, 2]
    assert len({c.id for c in response.tool_calls}) == 3
    assert all(c.name == "add" for c in response.tool_calls)


async def test_structured_output_sends_the_schema_and_returns_its_json(sim: LLMSimulator, client: LLMClient) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "invoice",
            "schema": {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]},
            "strict": True,
        },
    }
    sim.set_rules([Rule(reply=JsonReply(data={"total": 120.5}))])
    response = await client.complete(ask("extract the total", response_format=schema))
    assert json.loads(response.text or "") == {"total": 120.5}
    assert sim.requests[-1].body["response_format"] == schema


async def test_sampling_options_reach_the_server(sim: LLMSimulator, client: LLMClient) -> None:
    await client.complete(ask("hi", temperature=0.25, max_tokens=50))
    body = sim.requests[-1].body
    assert (body["temperature"], body["max_tokens"]) == (0.25, 50)


async def test_the_reasoning_effort_reaches_the_server(sim: LLMSimulator, client: LLMClient) -> None:
    response = await client.complete(ask("think hard", reasoning_effort="high"))
    assert response.text
    assert sim.requests[-1].body["reasoning_effort"] == "high"
    await client.complete(ask("hi"))
    assert "reasoning_effort" not in sim.requests[-1].body  # unset: the provider's default


async def test_a_model_that_does_not_reason_gets_no_effort(sim: LLMSimulator, client: LLMClient) -> None:
    """Both paths leave it out for gpt-4o (OpenAI refuses it there), as litellm's drop_params does."""
    await client.complete(
        LLMRequest(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}], timeout=10, reasoning_effort="low"
        )
    )
    assert sim.requests[-1].model == "gpt-4o" and "reasoning_effort" not in sim.requests[-1].body


async def test_embeddings_come_back_in_the_order_of_the_texts(sim: LLMSimulator, client: LLMClient) -> None:
    assert isinstance(client, Embedder)
    texts = ["refund for a car", "lunch at noon", "money back for a vehicle"]
    vectors = await client.embed(MODEL, texts, timeout=10)
    assert [pytest.approx(v) for v in vectors] == [embed_text(t) for t in texts]
    assert sim.embedding_requests[-1]["model"] == "sim-model" and sim.embedding_requests[-1]["input"] == texts


async def test_an_embeddings_error_is_its_category(sim: LLMSimulator, client: LLMClient) -> None:
    assert isinstance(client, Embedder)
    with pytest.raises(LLMBadRequestError):
        await client.embed(MODEL, [""] * 0, timeout=10)  # no input: the server's 400


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FaultKind.RATE_LIMIT, RateLimitError),
        (FaultKind.SERVER_ERROR, LLMUnavailableError),
        (FaultKind.UNAVAILABLE, LLMUnavailableError),
        (FaultKind.BAD_REQUEST, LLMBadRequestError),
        (FaultKind.CONTEXT_LENGTH, ContextLengthError),
        (FaultKind.AUTH, AuthError),
        (FaultKind.CONNECTION_RESET, LLMUnavailableError),
        (FaultKind.MALFORMED_JSON, LLMUnavailableError),
        (FaultKind.STREAM_CUT, LLMUnavailableError),
    ],
)
async def test_each_fault_is_its_category(
    sim: LLMSimulator, client: LLMClient, fault: FaultKind, error: type[FerryError]
) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=fault))])
    with pytest.raises(FerryError) as raised:
        await client.complete(ask())
    assert type(raised.value) is error, f"{fault}: {raised.value!r}"
    assert raised.value.message  # a readable message, not an empty string


async def test_retry_after_is_on_the_error(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=7))])
    with pytest.raises(RateLimitError) as raised:
        await client.complete(ask())
    assert raised.value.retry_after_seconds == 7


@pytest.fixture
async def header_server() -> AsyncIterator[Callable[[int, dict[str, str]], Awaitable[str]]]:
    """A one-route server answering every chat request with a given status and headers."""
    runners: list[web.AppRunner] = []

    async def serve(status: int, headers: dict[str, str]) -> str:
        async def chat(request: web.Request) -> web.Response:
            body = {"error": {"message": f"simulated {status}", "type": "server_error", "code": None}}
            return web.json_response(body, status=status, headers=headers)

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    yield serve
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "headers", "error", "expected"),
    [
        (429, {"retry-after-ms": "1500"}, RateLimitError, 1.5),
        (429, {"Retry-After": "3"}, RateLimitError, 3.0),
        (503, {"Retry-After": "4"}, LLMUnavailableError, 4.0),
        (429, "http-date", RateLimitError, 30.0),
    ],
    ids=["ms", "seconds", "unavailable", "http-date"],
)
async def test_retry_after_forms(
    header_server: Callable[[int, dict[str, str]], Awaitable[str]],
    make_client: ClientFactory,
    status: int,
    headers: dict[str, str] | str,
    error: type[RateLimitError | LLMUnavailableError],
    expected: float,
) -> None:
    if headers == "http-date":
        headers = {"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)}
    assert isinstance(headers, dict)
    client = make_client(await header_server(status, headers))
    with pytest.raises(error) as raised:
        await client.complete(ask())
    assert raised.value.retry_after_seconds == pytest.approx(expected, abs=2.0)


async def test_a_slow_first_byte_times_out_at_the_request_timeout(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=TextReply(text="too late", delay_ms=5000))])
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        await client.complete(LLMRequest(model=MODEL, messages=[{"role": "user", "content": "hi"}], timeout=0.5))
    assert time.monotonic() - started < 3.0


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


async def test_connection_refused_is_unavailable(make_client: ClientFactory, closed_port: int) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(LLMUnavailableError):
        await client.complete(ask())


async def test_an_unknown_path_or_model_is_a_bad_request(sim: LLMSimulator, make_client: ClientFactory) -> None:
    client = make_client(f"{sim.root_url}/no-such-api/v1")  # 404, as for a model the server does not have
    with pytest.raises(LLMBadRequestError) as raised:
        await client.complete(ask())
    assert type(raised.value) is LLMBadRequestError


async def test_a_real_providers_call_reports_its_list_price(sim: LLMSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """`openai/gpt-4o-mini` with OpenAI's own settings (pointed at the simulator): both paths price it."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    price = list_price("openai/gpt-4o-mini")
    assert price is not None
    sim.set_rules([Rule(reply=TextReply(text="alpha beta"))])
    clients: list[LLMClient] = [OpenAICompatClient(EndpointTable()), LiteLLMClient(base_url=None, api_key="unused")]
    try:
        for client in clients:
            response = await client.complete(
                LLMRequest(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}])
            )
            assert response.usage.cost_usd == pytest.approx(price.cost(3, 2)), type(client).__name__
    finally:
        await clients[0].aclose()  # type: ignore[attr-defined]


class _Watcher:
    """Collects the text deltas a streaming call hands over, with when each arrived."""

    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.at: list[float] = []

    async def __call__(self, delta: str) -> None:
        self.deltas.append(delta)
        self.at.append(time.monotonic())


async def test_a_streamed_answer_arrives_in_pieces_and_whole(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=TextReply(text="the quick brown fox jumps"), chunk_delay_ms=50)])
    watcher = _Watcher()
    response = await client.complete(ask("one two three", on_text=watcher))
    assert sim.requests[-1].body["stream"] is True
    assert len(watcher.deltas) >= 4, watcher.deltas  # piece by piece, not the whole text at the end
    assert "".join(watcher.deltas) == response.text == "the quick brown fox jumps"
    assert watcher.at[-1] - watcher.at[0] >= 0.1  # each piece handed over as it came, not all at the end
    assert response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (3, 5)  # include_usage


async def test_a_streamed_tool_call_is_folded_whole(sim: LLMSimulator, client: LLMClient) -> None:
    calls = [ToolCall(name="add", arguments={"a": i, "b": 10 * i}, id=f"call_{i}") for i in range(2)]
    sim.set_rules([Rule(reply=ToolCallsReply(calls=calls))])
    watcher = _Watcher()
    response = await client.complete(ask("add", tools=[ADD_TOOL], on_text=watcher))
    assert watcher.deltas == []  # a tool call is not text to show
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_0", "add", {"a": 0, "b": 0}),
        ("call_1", "add", {"a": 1, "b": 10}),
    ]
    assert response.finish_reason == "tool_calls"


async def test_a_stream_cut_mid_answer_is_unavailable(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=FaultReply(fault=FaultKind.STREAM_CUT))])
    with pytest.raises(LLMUnavailableError):
        await client.complete(ask(on_text=_Watcher()))


async def test_a_stalled_stream_times_out_at_the_request_timeout(sim: LLMSimulator, client: LLMClient) -> None:
    sim.set_rules([Rule(reply=TextReply(text="one two three four five six"), chunk_delay_ms=400)])
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        await client.complete(
            LLMRequest(model=MODEL, messages=[{"role": "user", "content": "hi"}], timeout=0.6, on_text=_Watcher())
        )
    assert time.monotonic() - started < 3.0
