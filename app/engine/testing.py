"""In-process model clients for tests: engine behaviour in milliseconds, no HTTP.

`ScriptedLLM` answers from a script, one step per call (per model, if the script is a
mapping: a fallback model gets its own); `FunctionLLM` asks a function, which may look
at the request, return a reply, await something, or raise any Ferry error:

    llm = ScriptedLLM([RateLimitError("slow down", retry_after_seconds=7),
                       Reply(tool_calls=[tool_call("add", {"a": 1, "b": 2})]),
                       "3"])
    engine = Engine(project, llm=llm, clock=clock)
    ...
    assert clock.sleeps == [7.0] and len(llm.requests) == 3

Both honour the contract of `model.py` as a real client does: every request is
recorded (`requests`), a call takes `latency` seconds on the given clock (the engine's
`FakeClock` makes that instant, and exact) and fails with `LLMTimeoutError` when that
is longer than the request's timeout, and usage is counted: `tokens_per_message` per
prompt message and per answer unless a reply says otherwise, priced with `price` when
given (cost None otherwise, as for an unknown model). A request with `on_text` gets
its answer's text streamed word by word before the response returns.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.contracts.errors import InternalError, LLMTimeoutError
from app.engine.clock import Clock, SystemClock
from app.engine.model import LLMRequest, LLMResponse, LLMUsage, ToolCall
from app.engine.pricing import ModelPrice

__all__ = ["FunctionLLM", "Reply", "ScriptedLLM", "Step", "tool_call"]

_WORDS = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One answer of a fake; what it leaves None, the fake fills in."""

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None  # None: "tool_calls" when it calls tools, else "stop"
    usage: LLMUsage | None = None  # None: counted by the fake (`tokens_per_message`, `price`)
    model: str | None = None  # None: the requested model answers
    latency: float | None = None  # None: the fake's `latency`


def tool_call(name: str, arguments: Mapping[str, Any] | str | None = None, *, id: str = "") -> ToolCall:
    """A call of tool `name`; `arguments` as the model would write them (a dict is JSON-encoded,
    a string is sent as is, invalid JSON included). An empty id is numbered by the fake."""
    text = arguments if isinstance(arguments, str) else json.dumps(dict(arguments or {}))
    return ToolCall(id=id, name=name, arguments=text)


#: What a fake's step or function gives: a reply (a plain string is a text reply), a
#: complete response (returned as is), or an exception to raise (a step only; a function raises).
Step = Reply | str | LLMResponse | BaseException
Outcome = Reply | str | LLMResponse
ModelFunction = Callable[[LLMRequest], Outcome | Awaitable[Outcome]]


class FunctionLLM:
    """An `LLMClient` whose answers come from `function(request)`."""

    def __init__(
        self,
        function: ModelFunction,
        *,
        clock: Clock | None = None,
        latency: float = 0.0,
        tokens_per_message: int = 10,
        price: ModelPrice | None = None,
    ) -> None:
        self._function = function
        self._clock = clock or SystemClock()
        self.latency = latency
        self.tokens_per_message = tokens_per_message
        self.price = price
        self.requests: list[LLMRequest] = []

    @property
    def models(self) -> list[str]:
        """The model of every request so far, in order (fallbacks show here)."""
        return [request.model for request in self.requests]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        number = len(self.requests)
        failure: BaseException | None = None
        outcome: Outcome | None = None
        try:
            produced = self._function(request)
            outcome = await produced if inspect.isawaitable(produced) else produced
        except Exception as exc:  # raised after the call's latency, as a server would answer
            failure = exc
        latency = outcome.latency if isinstance(outcome, Reply) and outcome.latency is not None else self.latency
        if latency > request.timeout:
            await self._clock.sleep(request.timeout)
            raise LLMTimeoutError(f"fake model did not answer within {request.timeout:g}s")
        if latency > 0:
            await self._clock.sleep(latency)
        if failure is not None:
            raise failure
        assert outcome is not None
        response = self._response(request, outcome, number)
        if request.on_text is not None and response.text:
            for piece in _WORDS.findall(response.text):  # streamed word by word, as a model writes
                await request.on_text(piece)
        return response

    def _response(self, request: LLMRequest, outcome: Outcome, number: int) -> LLMResponse:
        if isinstance(outcome, LLMResponse):
            return outcome
        reply = Reply(text=outcome) if isinstance(outcome, str) else outcome
        calls = tuple(
            call if call.id else ToolCall(id=f"call_{number}_{i}", name=call.name, arguments=call.arguments)
            for i, call in enumerate(reply.tool_calls)
        )
        return LLMResponse(
            model=reply.model or request.model,
            text=reply.text,
            tool_calls=calls,
            finish_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
            usage=reply.usage or self._usage(request),
        )

    def _usage(self, request: LLMRequest) -> LLMUsage:
        prompt = self.tokens_per_message * len(request.messages)
        completion = self.tokens_per_message
        cost = self.price.cost(prompt, completion) if self.price is not None else None
        return LLMUsage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)


class ScriptedLLM(FunctionLLM):
    """An `LLMClient` that plays `script` one step per call; an exception step is raised.

    A mapping scripts each model on its own (`{primary: [...], fallback: [...]}`). A call
    past the end of its script fails as `internal` (the test asked for more than it
    scripted); `remaining` says what was left unplayed.
    """

    def __init__(
        self,
        script: Sequence[Step] | Mapping[str, Sequence[Step]],
        *,
        clock: Clock | None = None,
        latency: float = 0.0,
        tokens_per_message: int = 10,
        price: ModelPrice | None = None,
    ) -> None:
        super().__init__(
            self._next_step, clock=clock, latency=latency, tokens_per_message=tokens_per_message, price=price
        )
        self._per_model = isinstance(script, Mapping)
        scripts = script if isinstance(script, Mapping) else {"": script}
        self._scripts: dict[str, list[Step]] = {model: list(steps) for model, steps in scripts.items()}

    @property
    def remaining(self) -> int:
        """Steps not played yet, over all models."""
        return sum(len(steps) for steps in self._scripts.values())

    def _next_step(self, request: LLMRequest) -> Outcome:
        steps = self._scripts.get(request.model if self._per_model else "")
        if not steps:
            raise InternalError(f"ScriptedLLM: no step left for {request.model!r} (call {len(self.requests)})")
        step = steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step
