"""A run's step journal: what a run redelivered after a crash need not do again.

Each completed LLM response and tool result of a run is recorded before the run moves
on; a run started again (a worker died, its request was delivered to another) finds
them and replays them instead of paying the model or running the tool a second time.
The engine only asks "is step N recorded?" and says "record step N"; where records live
(a compacted Kafka topic, `app/streams/checkpoints.py`) is the caller's business, so the
engine stays free of Kafka. A run without a journal (`ferry run`, checkpoints off for
the agent) records nothing.

Steps are numbered by the order in which the run reaches them, which is the same on
every attempt as long as the recorded answers are replayed: `llm.<n>` is the n-th LLM
call of the run (a chain's stages count on), `tool.<n>.<call id>` a tool call asked
for by LLM call n. A tool gets `context["idempotency_key"]` = `<run id>/<step>`: the
same on the redelivered attempt, so a tool cut off mid-call can deduplicate its own
side effect. A tool call that failed is not recorded (the next attempt may succeed).

The journal of the current run travels in a context variable set around the run
(`journal_scope`); it answers only to its own run id, so a run started from inside a
tool (another agent) never reads or writes the outer run's steps.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from app.contracts import Usage
from app.engine.model import LLMResponse, LLMUsage, ToolCall

IDEMPOTENCY_KEY = "idempotency_key"


class StepStore(Protocol):
    """Where one run's steps are kept: what the engine needs of it."""

    run_id: str

    def recorded(self, step: str) -> Mapping[str, Any] | None:
        """The value recorded for `step` by this run or an earlier attempt of it, else None."""
        ...

    async def record(self, step: str, value: Mapping[str, Any]) -> None:
        """Keep `value` for `step`; return once it would survive a crash of this process."""
        ...

    def record_soon(self, step: str, value: Mapping[str, Any]) -> None:
        """Keep `value` for `step` without waiting for it to be durable: for a run's final
        answer, which nothing outside the process acts on before the run's result, and which
        the result, once durable, stands for (the store may then never write it). A later
        `record` of the run makes it durable first, so steps stay durable in their order."""
        ...


class RunJournal:
    """A run's `StepStore` and the step count of the attempt under way."""

    def __init__(self, store: StepStore) -> None:
        self.store = store
        self.llm_steps = 0
        self.replayed = 0  # steps taken from the journal instead of done again

    @property
    def run_id(self) -> str:
        return self.store.run_id


_current: ContextVar[RunJournal | None] = ContextVar("ferry_run_journal", default=None)


@contextlib.contextmanager
def journal_scope(store: StepStore | None) -> Iterator[RunJournal | None]:
    """Make `store` the journal of the run executed inside the block (None: no journal)."""
    journal = RunJournal(store) if store is not None else None
    token = _current.set(journal)
    try:
        yield journal
    finally:
        _current.reset(token)


def _journal_of(run_id: str) -> RunJournal | None:
    journal = _current.get()
    return journal if journal is not None and journal.run_id == run_id else None


class _RunCounts(Protocol):
    """What a replayed LLM step adds to (the run's `RunState`)."""

    usage: Usage
    llm_steps: int


def replay_llm_step(run_id: str, state: _RunCounts) -> LLMResponse | None:
    """Called as an LLM step starts: its recorded response (counted in `state` as the
    original call was: its usage paid once, one step towards max_iterations), or None
    when the model has to be asked."""
    journal = _journal_of(run_id)
    if journal is None:
        return None
    journal.llm_steps += 1
    found = journal.store.recorded(f"llm.{journal.llm_steps}")
    if found is None:
        return None
    journal.replayed += 1
    state.usage.add(Usage.model_validate(found["usage"]))
    state.llm_steps += 1
    return _response_from(found["response"])


async def record_llm_step(run_id: str, response: LLMResponse, usage: Usage) -> None:
    """Called once an LLM step has its response, before the run acts on it.

    A response that calls tools is durable before a tool runs. A final answer is not
    awaited: what the run does with it (validate the output, write its result) stays in
    the process until the result, and the result, acknowledged a few milliseconds later,
    stands for it, so a crash in between asks the model again, as one before an awaited
    write's acknowledgement would."""
    journal = _journal_of(run_id)
    if journal is not None:
        value = {"response": recorded_response(response), "usage": usage.model_dump(mode="json")}
        if response.tool_calls:
            await journal.store.record(f"llm.{journal.llm_steps}", value)
        else:
            journal.store.record_soon(f"llm.{journal.llm_steps}", value)


@dataclass(frozen=True)
class ToolStep:
    """One tool call of a journaled run: its recorded result, or how to record it."""

    journal: RunJournal
    step: str
    done: tuple[str, Any] | None  # (the tool message, the value) recorded earlier

    def context(self, context: dict[str, Any]) -> dict[str, Any]:
        """The tool's context: the run's, plus this call's idempotency key."""
        return {**context, IDEMPOTENCY_KEY: f"{self.journal.run_id}/{self.step}"}

    async def record(self, content: str, value: Any) -> None:
        plain = json.loads(json.dumps(value, default=str))
        await self.journal.store.record(self.step, {"content": content, "value": plain})


def tool_step(run_id: str, call: ToolCall) -> ToolStep | None:
    """Called as a tool call starts (None: the run keeps no journal)."""
    journal = _journal_of(run_id)
    if journal is None:
        return None
    step = f"tool.{journal.llm_steps}.{call.id}"
    found = journal.store.recorded(step)
    if found is not None:
        journal.replayed += 1
    done = (str(found["content"]), found.get("value")) if found is not None else None
    return ToolStep(journal, step, done)


def recorded_response(response: LLMResponse) -> dict[str, Any]:
    """A response as its step records it (`dataclasses.asdict`'s shape, read back by
    `_response_from`), built field by field: `asdict` deep-copies every value and cost
    twenty times as much, on every model call of every run."""
    usage = response.usage
    return {
        "model": response.model,
        "text": response.text,
        "tool_calls": [{"id": call.id, "name": call.name, "arguments": call.arguments} for call in response.tool_calls],
        "finish_reason": response.finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": usage.cost_usd,
        },
    }


def _response_from(data: Mapping[str, Any]) -> LLMResponse:
    return LLMResponse(
        model=data["model"],
        text=data.get("text"),
        tool_calls=tuple(ToolCall(**call) for call in data.get("tool_calls") or ()),
        finish_reason=data.get("finish_reason"),
        usage=LLMUsage(**(data.get("usage") or {})),
    )
