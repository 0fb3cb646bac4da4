"""Chat over a WebSocket as a client meets it: a real uvicorn server, a real `websockets`
client, the message produced to the real broker, run by a real worker on the LLM
simulator, and its answer streamed back through this API instance's reply topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.api import ApiSettings
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.project.project import Project
from app.streams import ReplyInbox, TopicNames
from tests.e2e import test_api as api_fixtures
from tests.integration import conftest as services_fixtures
from tests.integration.kafka_helpers import unique
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import WorkerFactory

pytestmark = pytest.mark.integration

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
make_worker = streams_fixtures.make_worker
project = api_fixtures.project
history = api_fixtures.history
serve_api = api_fixtures.serve_api

ANSWER = "The quick brown fox jumps over the lazy dog"


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    rules = [
        Rule(match=Match(last_user_contains="again"), reply=TextReply(text="Still a fox")),
        Rule(reply=TextReply(text=ANSWER), chunk_delay_ms=30),
    ]
    async with LLMSimulator(rules) as simulator:
        yield simulator


@pytest.fixture
async def worker(project: Project, sim: LLMSimulator, make_worker: WorkerFactory) -> None:
    """A worker running the project's agents on the simulator (stopped by make_worker)."""
    await make_worker(project, sim.base_url).start()


@pytest.fixture
async def inbox(kafka_bootstrap: str, names: TopicNames) -> AsyncIterator[ReplyInbox]:
    replies = ReplyInbox(kafka_bootstrap, names, unique("api"))
    await replies.start()
    yield replies
    await replies.stop()


async def _events(socket: ClientConnection, until: set[str], timeout: float = 60) -> list[dict[str, Any]]:
    """Messages received up to and including the first whose type is in `until`."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not received or received[-1]["type"] not in until:
            received.append(json.loads(await socket.recv()))
    return received


def _shown(events: list[dict[str, Any]]) -> str:
    """What a client displays: the chunks after the last reset."""
    text = ""
    for event in events:
        if event["type"] == "stream_reset":
            text = ""
        elif event["type"] == "stream_chunk":
            text += event["chunk"]
    return text


async def test_a_streamed_answer_arrives_in_chunks_that_make_the_response_and_the_conversation_goes_on(
    sim: LLMSimulator,
    worker: None,
    inbox: ReplyInbox,
    serve_api: api_fixtures.ServeApi,
) -> None:
    api = await serve_api(replies=inbox)
    url = api.url.replace("http://", "ws://") + "/v1/agents/echo/chat"
    async with connect(url, additional_headers=api.key("acme")) as socket:
        connected = json.loads(await socket.recv())
        assert connected["type"] == "connected" and connected["agents"] == ["echo"]

        await socket.send(json.dumps({"type": "message", "id": "m1", "payload": {"message": "tell me"}}))
        events = await _events(socket, {"stream_end", "error"})
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["ack", "stream_start"], kinds
        assert events[0]["message_number"] == 1
        end = events[-1]
        assert end["type"] == "stream_end", end
        assert kinds.count("stream_chunk") >= 3, kinds  # pieces as the model wrote them, not one block
        assert _shown(events) == end["response"] == ANSWER
        assert end["usage"]["total_tokens"] > 0 and end["usage"]["completion_tokens"] == 9
        assert all(e["id"] == "m1" for e in events)

        await socket.send(json.dumps({"type": "message", "id": "m2", "payload": {"message": "again"}}))
        second = await _events(socket, {"stream_end", "error"})
        assert second[-1]["type"] == "stream_end" and second[-1]["response"] == "Still a fox"
        assert second[0]["message_number"] == 2
    seen = [(m["role"], m["content"]) for m in sim.requests[-1].body["messages"][1:]]
    assert seen == [("user", "tell me"), ("assistant", ANSWER), ("user", "again")]  # the conversation so far


async def test_without_streaming_one_response_and_the_key_as_first_message(
    sim: LLMSimulator,
    worker: None,
    inbox: ReplyInbox,
    serve_api: api_fixtures.ServeApi,
) -> None:
    api = await serve_api(replies=inbox)
    url = api.url.replace("http://", "ws://") + "/v1/agents/echo/chat?stream=false"
    token = api.key("acme")["Authorization"].removeprefix("Bearer ")
    async with connect(url) as socket:  # a browser cannot set headers: the key comes first
        await socket.send(json.dumps({"type": "auth", "key": token}))
        assert json.loads(await socket.recv())["type"] == "connected"
        await socket.send(json.dumps({"message": "tell me"}))  # the shorthand form
        events = await _events(socket, {"response", "error"})
        assert [e["type"] for e in events] == ["ack", "response"]
        assert events[-1]["response"] == ANSWER and events[-1]["run_id"]


async def test_a_bad_key_an_unknown_agent_and_a_spent_session_are_refused_with_a_reason(
    sim: LLMSimulator,
    worker: None,
    inbox: ReplyInbox,
    serve_api: api_fixtures.ServeApi,
) -> None:
    api = await serve_api(ApiSettings(chat_max_messages=1, chat_idle_timeout_seconds=1.0), replies=inbox)
    base = api.url.replace("http://", "ws://")

    async with connect(base + "/v1/agents/echo/chat") as socket:
        await socket.send(json.dumps({"type": "auth", "key": "fk_nope.nope"}))
        refused = json.loads(await socket.recv())
        assert refused["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    async with connect(base + "/v1/agents/nobody/chat", additional_headers=api.key("acme")) as socket:
        assert json.loads(await socket.recv())["code"] == "agent-not-found"

    async with connect(base + "/v1/agents/echo/chat", additional_headers=api.key("acme")) as socket:
        await socket.recv()  # connected
        await socket.send(json.dumps({"type": "message", "id": "a", "payload": {"message": "tell me"}}))
        await _events(socket, {"stream_end", "error"})
        await socket.send(json.dumps({"type": "message", "id": "b", "payload": {"message": "again"}}))
        over = json.loads(await socket.recv())
        assert (over["type"], over["code"], over["id"]) == ("error", "message-limit", "b")

    async with connect(base + "/v1/agents/echo/chat", additional_headers=api.key("acme")) as socket:
        await socket.recv()  # connected; then silence past the idle timeout
        expired = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert expired["code"] == "session-expired"
