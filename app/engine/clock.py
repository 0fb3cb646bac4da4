"""Time as a dependency of a run, so retry waits and deadlines can be tested exactly.

The engine never calls `time`, `asyncio.sleep` or `asyncio.timeout` directly for waits
and limits it decides on (retry back-off, Retry-After, a run's or a stage's timeout): it
asks its `Clock`. Production uses `SystemClock` (the event loop's monotonic time);
tests use `FakeClock`, whose `sleep` returns at once after moving virtual time forward
and recording the wait, and whose timeouts expire when virtual time passes them (a fake
model's latency, a retry wait), so a five-second timeout is tested in microseconds.

Tools run user code on real time: their `tool_timeout` stays a real `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, runtime_checkable


class TimeoutScope(Protocol):
    """What `async with clock.timeout(s) as scope` gives: did the timeout end the block?"""

    def expired(self) -> bool: ...


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences matter."""
        ...

    def now(self) -> datetime:
        """Wall-clock time for timestamps in results and spans."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[TimeoutScope]:
        """Like `asyncio.timeout`, on this clock: the block raises TimeoutError once `seconds`
        (None: never) have passed; the scope's `expired()` tells it from an inner timeout."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[TimeoutScope]:
        return asyncio.timeout(seconds)


class FakeClock:
    """Virtual time: `sleep` advances it instantly and records every wait in `sleeps`.

    A `timeout` scope expires when virtual time reaches its end, in the middle of a
    sleep that crosses it: the clock stops there, and the task inside the scope is
    cancelled into TimeoutError exactly as `asyncio.timeout` would do it. Virtual time
    moves only by `sleep` and `advance`: a block waiting on anything else (an event, a
    real tool) is not timed out by it.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._epoch = datetime.now(UTC)
        self._start = start
        self.sleeps: list[float] = []
        self._scopes: list[_VirtualTimeout] = []

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now - self._start)

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
        for scope in self._due(self._now):
            scope.expire()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self._now + max(0.0, seconds)
        while due := self._due(target):
            first = min(due, key=lambda scope: scope.at)
            self._now = max(self._now, first.at)
            first.expire()
            await asyncio.sleep(0)  # the expiry cancels its task here, if it is this one
        self._now = target
        await asyncio.sleep(0)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[TimeoutScope]:
        if seconds is None:
            return asyncio.timeout(None)
        return _VirtualTimeout(self, self._now + seconds)

    def _due(self, until: float) -> list[_VirtualTimeout]:
        return [scope for scope in self._scopes if scope.at <= until]

    def _enter(self, scope: _VirtualTimeout) -> None:
        self._scopes.append(scope)
        if scope.at <= self._now:
            scope.expire()

    def _exit(self, scope: _VirtualTimeout) -> None:
        if scope in self._scopes:
            self._scopes.remove(scope)


class _VirtualTimeout:
    """An `asyncio.timeout(None)` that its `FakeClock` expires at virtual time `at`."""

    def __init__(self, clock: FakeClock, at: float) -> None:
        self._clock = clock
        self.at = at
        self._inner = asyncio.timeout(None)

    async def __aenter__(self) -> _VirtualTimeout:
        await self._inner.__aenter__()
        self._clock._enter(self)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._clock._exit(self)
        await self._inner.__aexit__(kind, error, tb)

    def expire(self) -> None:
        """Cancel the block's task now; it leaves the block with TimeoutError."""
        self._clock._exit(self)
        self._inner.reschedule(asyncio.get_running_loop().time())

    def expired(self) -> bool:
        return self._inner.expired()


class Deadline:
    """The end of a run in `Clock.monotonic()` terms; None means no deadline."""

    def __init__(self, clock: Clock, timeout_seconds: float | None) -> None:
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.at = None if timeout_seconds is None else clock.monotonic() + timeout_seconds

    def narrowed(self, timeout_seconds: float | None) -> Deadline:
        """A deadline no later than this one nor than `timeout_seconds` from now."""
        if timeout_seconds is None:
            return self
        inner = Deadline(self.clock, timeout_seconds)
        if self.at is not None and inner.at is not None and self.at < inner.at:
            return self
        return inner

    def remaining(self) -> float | None:
        if self.at is None:
            return None
        return self.at - self.clock.monotonic()

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def cap(self, seconds: float) -> float:
        """`seconds`, shortened so that it does not pass the deadline (never below 0)."""
        remaining = self.remaining()
        if remaining is None:
            return seconds
        return max(0.0, min(seconds, remaining))
