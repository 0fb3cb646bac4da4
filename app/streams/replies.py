"""A worker's side of a live caller: the answer streamed to the caller's own reply topic.

A request with `reply_to` (a chat message, sent by the API instance that holds the
socket) gets its events (`app.contracts.replies`) produced there, keyed by run id:
the answer's text while the model writes it (when the request asks to `stream`), and
the result. The result also goes to `runs.results` as for every run; the reply topic
only spares the caller a read of every tenant's results.

Text is a view, sent on its own producer: acks=1 and no linger, because a person is
watching the first token, and a lost piece costs nothing (the result carries the whole
answer). While one send is in flight the next pieces are gathered into one event, so a
fast model makes few records and a slow broker never holds the model's stream back.
A reply topic that is gone (its API instance stopped) costs a run at most
`SEND_TIMEOUT_S`, never its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.contracts import ReplyEvent, RunRequest, RunResult, SpanEvent
from app.contracts.trace_context import TraceContext
from app.engine.streaming import watching
from app.streams.connect import start_client
from app.streams.processor import Runner

log = logging.getLogger(__name__)

#: Longest a reply event may take to reach the broker before it is given up.
SEND_TIMEOUT_S = 5.0


class ReplyPublisher:
    """The worker's producer of reply events, started with the worker."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks=1,
            linger_ms=0,
            request_timeout_ms=int(SEND_TIMEOUT_S * 1000),
            max_request_size=8 * 1024 * 1024,
        )
        await start_client(producer.start, producer.stop, self._bootstrap)
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, topic: str, event: ReplyEvent) -> bool:
        """Produce one event and wait for the broker; False (logged) when it could not."""
        if self._producer is None:
            return False
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                delivery = await self._producer.send(
                    topic, key=event.run_id.encode(), value=event.model_dump_json(exclude_none=True).encode()
                )
                await delivery
        except (KafkaError, TimeoutError) as exc:
            log.warning("reply to %s for run %s not sent (%s): %s", topic, event.run_id, event.kind, exc)
            return False
        return True


class RunReplies:
    """One run's events to its caller, in order; adjacent text gathered while a send is in flight."""

    def __init__(self, publisher: ReplyPublisher, topic: str, run_id: str) -> None:
        self._publisher = publisher
        self._topic = topic
        self._run_id = run_id
        self._seq = 0
        self._pending: list[str | None] = []  # text pieces; None is a reset
        self._sender: asyncio.Task[None] | None = None

    async def text(self, delta: str) -> None:
        self._pending.append(delta)
        self._kick()

    async def reset(self) -> None:
        self._pending.append(None)
        self._kick()

    async def finish(self, result: RunResult) -> None:
        """Send what is pending, then the result."""
        if self._sender is not None:
            await self._sender
        await self._send(ReplyEvent(run_id=self._run_id, seq=self._next(), kind="result", result=result))

    def _kick(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain(), name=f"replies of {self._run_id}")

    async def _drain(self) -> None:
        while self._pending:
            head = self._pending.pop(0)
            if head is None:
                await self._send(ReplyEvent(run_id=self._run_id, seq=self._next(), kind="reset"))
                continue
            pieces = [head]
            while self._pending and self._pending[0] is not None:
                pieces.append(str(self._pending.pop(0)))
            await self._send(ReplyEvent(run_id=self._run_id, seq=self._next(), kind="text", text="".join(pieces)))

    def _next(self) -> int:
        self._seq += 1
        return self._seq - 1

    async def _send(self, event: ReplyEvent) -> None:
        await self._publisher.send(self._topic, event)


class ReplyingRunner:
    """A runner whose runs with a reply topic also answer their caller there."""

    def __init__(self, runner: Runner, publisher: ReplyPublisher) -> None:
        self._runner = runner
        self._publisher = publisher

    async def run(
        self,
        request: RunRequest,
        *,
        on_span: Callable[[SpanEvent], None] | None = None,
        trace_context: TraceContext | None = None,
    ) -> RunResult:
        if request.reply_to is None:
            return await self._runner.run(request, on_span=on_span, trace_context=trace_context)
        replies = RunReplies(self._publisher, request.reply_to, request.run_id)
        with watching(replies) if request.stream else contextlib.nullcontext():
            result = await self._runner.run(request, on_span=on_span, trace_context=trace_context)
        await replies.finish(result)
        return result
