"""Time as a dependency of a run, so retry waits and deadlines can be tested exactly.

The engine never calls `time` or `asyncio.sleep` directly for waits it decides on
(retry back-off, Retry-After): it asks its `Clock`. Production uses `SystemClock`
(the event loop's monotonic time); tests use `FakeClock`, whose `sleep` returns at
once after moving virtual time forward and recording the wait.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences matter."""
        ...

    def now(self) -> datetime:
        """Wall-clock time for timestamps in results and spans."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Virtual time: `sleep` advances it instantly and records every wait in `sleeps`."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._epoch = datetime.now(UTC)
        self._start = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now - self._start)

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)


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
