"""`Lane`: one agent's scheduler in a worker, `LaneCore`'s decisions driven by asyncio.

`submit` blocks while the read-ahead window is full: that is the back-pressure that
stops the consumer loop from reading further. A started run is a task executing the
`execute` callback, which must not raise (it emits a result or a DLQ record itself).
`release` (rebalance) and `drain` (stop) let running runs finish up to a deadline and
then cancel them: a cancelled run emits nothing and is not acked, so Kafka delivers it
again to whoever holds its partition next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from app.streams.lane_core import Admission, LaneCore, Ticket

P = TypeVar("P")
log = logging.getLogger(__name__)


class Lane(Generic[P]):
    def __init__(self, name: str, core: LaneCore[P], execute: Callable[[Ticket[P]], Awaitable[None]]) -> None:
        self.name = name
        self.core = core
        self._execute = execute
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Condition()
        self._closed = False
        core.listen(self._pump)  # a new cap or share (a deployment, a rebalance) may free slots

    async def submit(self, ticket: Ticket[P]) -> Admission:
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self.core.has_room())
            if self._closed:
                return Admission.CLOSED
            admission = self.core.offer(ticket)
        self._pump()
        return admission

    def assign(self, partitions: Iterable[int]) -> None:
        self.core.assign(partitions)
        self._pump()

    async def release(self, partitions: Iterable[int] | None, deadline: float) -> list[Ticket[P]]:
        """Give up `partitions` (all when None): drop their queue, finish or cancel their runs."""
        parts = None if partitions is None else set(partitions)
        withdrawn = self.core.withdraw(parts)
        running = [self._tasks[t.run_id] for t in self.core.running_tickets(parts) if t.run_id in self._tasks]
        if running:
            _done, pending = await asyncio.wait(running, timeout=max(0.0, deadline))
            for task in pending:
                task.cancel()
            if pending:
                log.warning("lane %s: cancelled %d runs still running at the deadline", self.name, len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        remaining = set(self.core.assigned) - parts if parts is not None else set()
        self.core.assign(remaining)
        await self._notify()
        return withdrawn

    async def withdraw(self, where: Callable[[Ticket[P]], bool]) -> list[Ticket[P]]:
        """Take the queued (not started) runs for which `where` holds out of the queue."""
        withdrawn = self.core.withdraw(None, where)
        if withdrawn:
            await self._notify()  # their read-ahead room is free again
        return withdrawn

    async def drain(self, deadline: float) -> None:
        self._closed = True
        await self.release(None, deadline)

    def _pump(self) -> None:
        while (ticket := self.core.next()) is not None:
            self._tasks[ticket.run_id] = asyncio.create_task(self._run(ticket), name=f"run {ticket.run_id}")

    async def _run(self, ticket: Ticket[P]) -> None:
        try:
            await self._execute(ticket)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("lane %s: run %s crashed outside the engine", self.name, ticket.run_id)
        finally:
            self._tasks.pop(ticket.run_id, None)
            self.core.done(ticket)
            self._pump()
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
