"""`LLMSimulator`: a real OpenAI-compatible HTTP server that tests script per call.

It is a real server (not a mock of litellm) so that the code under test goes through
litellm's whole client path: HTTP, SSE parsing, exception mapping, timeouts. Routes:

    POST /v1/chat/completions   the simulated model (also at /chat/completions)
    POST /v1/embeddings         deterministic embeddings (also at /embeddings; `embeddings.py`)
    GET  /v1/models             the known model names
    GET  /_sim/rules            current rules            (control API, see docs/llm-simulator.md)
    POST /_sim/rules            replace or append rules (body: RuleSet)
    POST /_sim/reset            back to the initial rules and latency, observations cleared
    POST /_sim/config           {"latency_ms": N}: change the global latency
    GET  /_sim/stats            SimStats (`?requests=0` leaves out the recorded requests)
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from app.devstack.llm_sim.conversation import Conversation
from app.devstack.llm_sim.embeddings import embeddings_answer
from app.devstack.llm_sim.protocol import Answer, error_response, sse
from app.devstack.llm_sim.rules import (
    FaultKind,
    FaultReply,
    JsonReply,
    Rule,
    RuleSet,
    StepReply,
    TextReply,
    ToolCallsReply,
)
from app.devstack.llm_sim.state import RecordedRequest, SimState, SimStats

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sim-model"


def default_reply_text(conversation: Conversation) -> str:
    """The answer when no rule matches: deterministic, and shows what the model was asked."""
    if conversation.last_user_text:
        return f"Simulated reply to: {conversation.last_user_text}"
    return "Simulated reply."


class SimConfig(BaseModel):
    latency_ms: int = Field(ge=0)


class LLMSimulator:
    """One simulated provider on 127.0.0.1; use `async with LLMSimulator(...) as sim`."""

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: int = 0,
        record_requests: bool = True,
        models: Sequence[str] = (DEFAULT_MODEL,),
    ) -> None:
        self._initial_rules = list(rules)
        self._initial_latency_ms = latency_ms
        self._host = host
        self._requested_port = port
        self._models = list(models)
        self._state = SimState(latency_ms=latency_ms, record_requests=record_requests)
        self._state.set_rules(self._initial_rules)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.embedding_requests: list[Any] = []  # bodies of /v1/embeddings calls, in order
        self.app = self._build_app()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        # handler_cancellation: a client that gives up (timeout) cancels its handler, so
        # in-flight counts stay true and a slow-first-byte sleep does not outlive the test.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=0.25, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, shutdown_timeout=0.25)
        await site.start()
        self._port = int(self._runner.addresses[0][1])  # the OS-chosen port when port=0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LLMSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """Where the control API lives (`<root_url>/_sim/...`)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass to litellm as `api_base` (with `model="openai/<name>"`)."""
        return f"{self.root_url}/v1"

    # -- scripting -----------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        return [active.rule for active in self._state.rules]

    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replaces all rules; sequence progress starts over."""
        self._state.set_rules(rules)

    def add_rules(self, *rules: Rule) -> None:
        """Appends rules after the existing ones, whose sequence progress is kept."""
        self._state.set_rules(rules, append=True)

    @property
    def latency_ms(self) -> int:
        return self._state.latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self._state.latency_ms = SimConfig(latency_ms=value).latency_ms

    def reset(self) -> None:
        """Back to the constructor's rules and latency, with every observation cleared."""
        self._state.set_rules(self._initial_rules)
        self._state.latency_ms = self._initial_latency_ms
        self._state.clear_observations()
        self.embedding_requests.clear()

    # -- observations --------------------------------------------------------------

    def stats(self, include_requests: bool = True) -> SimStats:
        return self._state.snapshot(include_requests)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.snapshot().requests

    @property
    def calls_total(self) -> int:
        return self._state.calls_total

    @property
    def calls_by_model(self) -> dict[str, int]:
        return dict(self._state.calls_by_model)

    @property
    def in_flight(self) -> int:
        return self._state.in_flight

    @property
    def peak_in_flight(self) -> int:
        return self._state.peak_in_flight

    # -- HTTP ----------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models_list)
        app.router.add_get("/_sim/rules", self._get_rules)
        app.router.add_post("/_sim/rules", self._post_rules)
        app.router.add_post("/_sim/reset", self._post_reset)
        app.router.add_post("/_sim/config", self._post_config)
        app.router.add_get("/_sim/stats", self._get_stats)
        return app

    async def _models_list(self, request: web.Request) -> web.Response:
        names = dict.fromkeys(self._models + [r.match.model for r in self.rules if r.match.model])
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "ferry-sim"} for name in names]
        return web.json_response({"object": "list", "data": data})

    async def _get_rules(self, request: web.Request) -> web.Response:
        return web.json_response(RuleSet(rules=self.rules).model_dump(mode="json"))

    async def _post_rules(self, request: web.Request) -> web.Response:
        try:
            ruleset = RuleSet.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"error": json.loads(exc.json())}, status=400)
        self._state.set_rules(ruleset.rules, append=ruleset.mode == "append")
        return web.json_response({"rules": len(self._state.rules)})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            config = SimConfig.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"error": json.loads(exc.json())}, status=400)
        self._state.latency_ms = config.latency_ms
        return web.json_response(config.model_dump())

    async def _get_stats(self, request: web.Request) -> web.Response:
        include = request.query.get("requests", "1") not in ("0", "false", "no")
        return web.json_response(self.stats(include).model_dump(mode="json"))

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Every call is kept in `embedding_requests` (its body); bad input is OpenAI's 400."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        self.embedding_requests.append(body)
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            bad = {"error": {"message": "input must be a string or a list of strings", "type": "invalid_request_error"}}
            return web.json_response(bad, status=400)
        if self._state.latency_ms:
            await asyncio.sleep(self._state.latency_ms / 1000)
        assert isinstance(body, dict)
        return web.json_response(embeddings_answer(str(body.get("model", DEFAULT_MODEL)), texts))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        with self._state.tracking_in_flight():
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                record = self._state.begin_call("", False, raw.decode(errors="replace"), dict(request.headers))
                record.outcome = "400"
                bad = {"error": {"message": "Request body is not a JSON object.", "type": "invalid_request_error"}}
                return web.json_response(bad, status=400)
            stream = bool(body.get("stream"))
            record = self._state.begin_call(str(body.get("model", "")), stream, body, dict(request.headers))
            try:
                response = await self._answer(request, body, stream, record)
            except (asyncio.CancelledError, ConnectionResetError):
                record.outcome = "cancelled"
                raise
            if record.outcome == "pending":
                record.outcome = str(response.status)
            return response

    async def _answer(
        self, request: web.Request, body: dict[str, Any], stream: bool, record: RecordedRequest
    ) -> web.StreamResponse:
        conversation = Conversation.from_body(body)
        reply, rule = self._state.choose(conversation, record)
        if reply is None:
            reply = TextReply(text=default_reply_text(conversation))
        delay_ms = self._state.latency_ms + reply.delay_ms + (rule.delay_ms if rule else 0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if isinstance(reply, FaultReply):
            return await self._fault(request, reply, conversation, stream, record)
        answer = _answer_for(reply, conversation, record.number)
        if not stream:
            return web.json_response(answer.completion())
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        chunk_delay = rule.chunk_delay_ms / 1000 if rule else 0.0
        response = _sse_response()
        await response.prepare(request)
        for chunk in answer.chunks(include_usage):
            await response.write(sse(chunk))
            if chunk_delay:
                await asyncio.sleep(chunk_delay)
        await response.write(sse("[DONE]"))
        await response.write_eof()
        return response

    async def _fault(
        self, request: web.Request, fault: FaultReply, conversation: Conversation, stream: bool, record: RecordedRequest
    ) -> web.StreamResponse:
        kind = fault.fault
        if kind is FaultKind.CONNECTION_RESET:
            record.outcome = "connection_reset"
            _reset(request)
            return web.Response(status=500)  # never sent: the transport is gone
        if kind is FaultKind.MALFORMED_JSON:
            if not stream:
                broken = '{"id": "chatcmpl-broken", "choices": ['
                return web.Response(status=200, text=broken, content_type="application/json")
            response = _sse_response()
            await response.prepare(request)
            await response.write(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
            await response.write(sse("[DONE]"))
            await response.write_eof()
            return response
        if kind is FaultKind.STREAM_CUT:
            record.outcome = "stream_cut"
            answer = _answer_for(TextReply(text=fault.message or "this stream is cut"), conversation, record.number)
            response = _sse_response() if stream else web.StreamResponse(headers={"Content-Type": "application/json"})
            if not stream:
                response.content_length = 4096
            await response.prepare(request)
            await response.write(sse(answer.chunks(False)[0]) if stream else b'{"id": "chatcmpl-cut", ')
            await asyncio.sleep(0.01)  # let the bytes leave before the reset
            _reset(request)
            return response
        error = error_response(fault, conversation.prompt_tokens)
        return web.json_response(error.body, status=error.status, headers=error.headers)


def _answer_for(reply: StepReply, conversation: Conversation, number: int) -> Answer:
    if isinstance(reply, ToolCallsReply):
        text, calls = reply.text, tuple(reply.calls)
    elif isinstance(reply, JsonReply):
        text, calls = reply.as_text(), ()
    elif isinstance(reply, TextReply):
        text, calls = reply.text, ()
    else:
        raise TypeError(f"{type(reply).__name__} is not an answer")
    return Answer(
        completion_id=f"chatcmpl-sim-{number}",
        model=conversation.model or DEFAULT_MODEL,
        text=text,
        tool_calls=calls,
        tool_call_ids=tuple(c.id or f"call_sim_{number}_{i}" for i, c in enumerate(calls)),
        prompt_tokens=conversation.prompt_tokens,
    )


def _sse_response() -> web.StreamResponse:
    return web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})


def _reset(request: web.Request) -> None:
    """Drops the connection with a TCP RST (SO_LINGER 0), as a crashed or cut-off provider does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            logger.debug("could not set SO_LINGER before reset", exc_info=True)
    transport.abort()
