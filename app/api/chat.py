"""One chat socket: the message protocol of Connic's WebSocket connector, each message a run.

    server                                   client
    {"type": "connected", session_id, agents}
                                             {"type": "message", "id": "m1", "payload": {"message": "hi"}}
    {"type": "ack", "id": "m1", "message_number": 1}
    {"type": "stream_start", "id": "m1", "agent": …}
    {"type": "stream_chunk", "id": "m1", "agent": …, "chunk": "Hel"}   … as the model writes
    {"type": "stream_end", "id": "m1", "agent": …, "run_id": …, "response": …, "usage": {…}}
    {"type": "error", "id": "m1", "code": …, "error": …}               instead, when a message fails

With streaming off (`?stream=false`) one `{"type": "response", …}` replaces the stream
events. `stream_reset` (Ferry's): forget the chunks of this message so far, the answer
starts over (a retried model call, a step that turned into a tool call); the chunks
after the last reset, joined, are the response.

Each message is a run like any other: produced to the agent's request topic, run by a
worker under the agent's cap, timeouts and traces; the worker streams the answer to this
API instance's reply topic (`app.streams.reply_inbox`). The conversation so far (bounded)
travels with each request, so any worker can answer any message. The socket's own
limits: an idle timeout and a number of messages, after which it is closed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from app.api.keys import Principal
from app.api.services import ApiServices
from app.api.submission import PRODUCE_TIMEOUT_S, finished_run
from app.api.views import RunView
from app.contracts import ChatTurn, ReplyEvent, RunRequest

#: How often a wait with no event looks at the run history (a result the reply topic
#: missed: a run cancelled before it started, a worker that lost its reply producer).
HISTORY_CHECK_S = 2.0


class Socket(Protocol):
    """What a session needs of a WebSocket (Starlette's, in the app)."""

    async def send_json(self, data: Any) -> None: ...

    async def receive_text(self) -> str: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = "message"
    id: str | None = None
    payload: dict[str, Any] | None = None
    message: str | None = None  # shorthand: {"message": "hi"}


class ChatSession:
    def __init__(
        self, services: ApiServices, caller: Principal, agent: str, socket: Socket, *, streaming: bool
    ) -> None:
        self.services = services
        self.caller = caller
        self.agent = agent
        self.socket = socket
        self.streaming = streaming
        self.session_id = str(uuid.uuid4())
        self.history: list[ChatTurn] = []
        self.messages = 0
        self.closed = False  # idle too long or over its message cap: the socket was closed

    async def serve(self) -> None:
        await self.socket.send_json({"type": "connected", "session_id": self.session_id, "agents": [self.agent]})
        while not self.closed:
            message = await self._next_message()
            if message is not None:
                await self._answer(message)

    async def _next_message(self) -> ChatMessage | None:
        settings = self.services.settings
        try:
            raw = await asyncio.wait_for(self.socket.receive_text(), settings.chat_idle_timeout_seconds)
        except TimeoutError:
            await self._close_with(None, "session-expired", "the session was idle too long; connect again", 1000)
            return None
        try:
            message = ChatMessage.model_validate(json.loads(raw))
        except (ValueError, ValidationError):
            await self._error(None, "invalid-message", 'send JSON: {"type": "message", "payload": {"message": "…"}}')
            return None
        if message.type == "ping":
            await self.socket.send_json({"type": "pong", "id": message.id})
            return None
        if message.type != "message":
            await self._error(message.id, "invalid-message", f"unknown message type {message.type!r}")
            return None
        return message

    async def _answer(self, message: ChatMessage) -> None:
        payload = dict(message.payload or {})
        text = payload.get("message", message.message)
        if not isinstance(text, str) or not text.strip():
            await self._error(message.id, "invalid-message", "payload.message: a non-empty string is required")
            return
        settings = self.services.settings
        if self.messages >= settings.chat_max_messages:
            await self._close_with(
                message.id, "message-limit", f"this session took its {settings.chat_max_messages} messages", 1008
            )
            return
        limiter = self.services.limiter
        wait = limiter.acquire(self.caller.key_id) if limiter is not None else 0.0
        if wait > 0:  # the key's request rate, as on HTTP: this message is refused, the socket stays
            await self._error(message.id, "rate-limited", "this API key is over its rate limit", retry_after=wait)
            return
        self.messages += 1
        await self.socket.send_json({"type": "ack", "id": message.id, "message_number": self.messages})
        context = payload.get("context")
        request = self._request(message.id, text, context if isinstance(context, dict) else {})
        inbox, sink = self.services.replies, self.services.sink
        if inbox is None or sink is None:
            await self._error(message.id, "unavailable", "the API is not connected to Kafka yet; retry shortly")
            return
        with inbox.expect(request.run_id) as events:
            try:
                async with asyncio.timeout(PRODUCE_TIMEOUT_S):
                    await sink.submit(request)
            except TimeoutError:
                await self._error(message.id, "unavailable", "Kafka did not take the message in time; send it again")
                return
            if self.streaming:
                await self.socket.send_json({"type": "stream_start", "id": message.id, "agent": self.agent})
            view = await self._relay(message.id, request.run_id, events)
        if view is not None:
            await self._respond(message.id, text, view)

    def _request(self, message_id: str | None, text: str, context: dict[str, Any]) -> RunRequest:
        inbox = self.services.replies
        return RunRequest.new(
            self.agent,
            {"message": text},
            tenant=self.caller.tenant,
            context=context,
            history=list(self.history),
            reply_to=inbox.topic if inbox is not None else None,
            stream=self.streaming,
            trigger={
                "source": "websocket",
                "metadata": {"session_id": self.session_id, "message_id": message_id, "api_key": self.caller.key_id},
            },
        )

    async def _relay(self, message_id: str | None, run_id: str, events: asyncio.Queue[ReplyEvent]) -> RunView | None:
        """Pass the run's text on as it comes; its result (or None after an error sent)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.settings.chat_reply_timeout_seconds
        while loop.time() < deadline:
            try:
                event = await asyncio.wait_for(events.get(), HISTORY_CHECK_S)
            except TimeoutError:
                record = await finished_run(self.services, run_id)
                if record is not None:
                    return RunView.of(record)
                continue
            if event.kind == "text" and self.streaming:
                await self.socket.send_json(
                    {"type": "stream_chunk", "id": message_id, "agent": self.agent, "chunk": event.text or ""}
                )
            elif event.kind == "reset" and self.streaming:
                await self.socket.send_json({"type": "stream_reset", "id": message_id, "agent": self.agent})
            elif event.kind == "result" and event.result is not None:
                return RunView.of_result(event.result)
        await self._error(
            message_id,
            "timeout",
            f"no answer within {self.services.settings.chat_reply_timeout_seconds:g} s; "
            f"the run goes on: GET /v1/runs/{run_id}",
            run_id=run_id,
        )
        return None

    async def _respond(self, message_id: str | None, text: str, view: RunView) -> None:
        if view.status != "completed":
            error = view.error
            await self._error(
                message_id,
                error.category if error else view.status,
                error.message if error else f"the run ended {view.status}",
                run_id=view.run_id,
                status=view.status,
            )
            return
        answer = view.output if isinstance(view.output, str) else json.dumps(view.output, ensure_ascii=False)
        self._remember(text, answer)
        await self.socket.send_json(
            {
                "type": "stream_end" if self.streaming else "response",
                "id": message_id,
                "agent": self.agent,
                "run_id": view.run_id,
                "response": view.output,
                "usage": view.usage.model_dump(mode="json") if view.usage else None,
            }
        )

    def _remember(self, question: str, answer: str) -> None:
        self.history += [ChatTurn(role="user", content=question), ChatTurn(role="assistant", content=answer)]
        keep = 2 * self.services.settings.chat_history_turns
        del self.history[: max(0, len(self.history) - keep)]

    async def _error(self, message_id: str | None, code: str, detail: str, **extra: Any) -> None:
        await self.socket.send_json({"type": "error", "id": message_id, "code": code, "error": detail, **extra})

    async def _close_with(self, message_id: str | None, code: str, detail: str, close_code: int) -> None:
        await self._error(message_id, code, detail)
        await self.socket.close(code=close_code, reason=code)
        self.closed = True
