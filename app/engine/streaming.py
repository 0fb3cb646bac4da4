"""The answer of a run, shown while the model writes it: to whoever watches (a chat socket).

The engine knows nothing of where the text goes: the caller of a run (the worker, for a
request with a reply topic) sets an `AnswerStream` for the run's task with `watching`,
and every model call of that run streams into it. A context variable, not an argument
threaded through every layer: it belongs to the run's own task (and the tasks it
starts), so two runs, of two tenants, never see each other's stream.

What is on screen is always the current model step: when a new step or a retried
attempt begins after text was shown, the stream is reset first. The text streamed last
is therefore the final step's answer, which for a text agent is the run's output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol


class AnswerStream(Protocol):
    async def text(self, delta: str) -> None:
        """The next piece of the answer."""
        ...

    async def reset(self) -> None:
        """Forget what was sent: the answer starts over."""
        ...


class StepText:
    """The run's stream, reset when a step or attempt starts over shown text."""

    def __init__(self, stream: AnswerStream) -> None:
        self._stream = stream
        self.shown = False  # text of the current step was sent

    async def begin(self) -> None:
        if self.shown:
            self.shown = False
            await self._stream.reset()

    async def text(self, delta: str) -> None:
        if delta:
            self.shown = True
            await self._stream.text(delta)


_watched: ContextVar[StepText | None] = ContextVar("ferry_answer_stream", default=None)


@contextlib.contextmanager
def watching(stream: AnswerStream) -> Iterator[None]:
    """Stream the answers of the runs started in this context (this task and its children)."""
    token = _watched.set(StepText(stream))
    try:
        yield
    finally:
        _watched.reset(token)


def watched_answer() -> StepText | None:
    """The current run's answer stream, or None when nobody watches."""
    return _watched.get()
