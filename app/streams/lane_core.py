"""The scheduling decisions of one agent in one worker, without I/O: easy to test exactly.

A `Ticket` is one run read from the agent's topics and waiting to start. The core
decides, in this order:
  - admission: a run id already queued or running is a duplicate; with
    `on_conflict: drop` a run whose concurrency key is held (queued or running) is
    dropped; otherwise it queues, within the read-ahead window (count and bytes). With
    `on_conflict: coalesce` it queues in place of the runs of its key waiting here (at
    most one waits, unless the rule was `queue` when they came): they leave the queue in
    its `replaced`, for the caller to end as cancelled; the run executing is untouched;
  - start: the next run, fair over tenants (least served first, see `fair_queue.py`),
    of a partition this worker holds, whose key has no run executing, while the worker
    runs fewer than its share of the cap (see `shares.py`; one pool for all its
    partitions of the agent).

`reconfigure` applies a new deployment's cap and `on_conflict` between runs: nothing
running is stopped; a lower share only means nothing new starts until the running runs
are below it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Literal, TypeVar

from app.streams.fair_queue import FairQueue
from app.streams.shares import member_share

P = TypeVar("P")
OnConflict = Literal["queue", "drop", "coalesce"]


@dataclass(eq=False)
class Ticket(Generic[P]):
    run_id: str
    tenant: str
    partition: int
    key: str | None = None
    size: int = 0
    cost: float = 1.0
    payload: P | None = field(default=None, repr=False)
    # Set by `offer` under `coalesce`: the waiting runs of its key this run took the place of.
    replaced: list[Ticket[P]] = field(default_factory=list, repr=False)


class Admission(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    DROPPED = "dropped"
    CLOSED = "closed"  # the lane is draining: not admitted, not acked


class LaneCore(Generic[P]):
    def __init__(
        self,
        *,
        cap: int,
        partitions: int | None = None,
        on_conflict: OnConflict = "queue",
        window: int = 2000,
        window_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.cap = cap
        self.partitions = partitions  # of the agent's topics, when known (shown, not used to share)
        self.index, self.holders = 0, 1  # this worker's place among the agent's holders (`set_group`)
        self.on_conflict = on_conflict
        self.window = window
        self.window_bytes = window_bytes
        self.assigned: set[int] = set()
        self._queue: FairQueue[Ticket[P]] = FairQueue()
        self._running: dict[str, Ticket[P]] = {}
        self._queued_ids: set[str] = set()
        self._key_holders: Counter[str] = Counter()
        self._running_keys: set[str] = set()
        self._bytes = 0
        self._listeners: list[Callable[[], None]] = []

    # -- state ---------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    def capacity(self) -> int:
        """Runs this worker may execute at once: its share of the cap while it holds partitions."""
        if not self.assigned:
            return 0
        return member_share(self.cap, self.holders, self.index)

    def has_room(self) -> bool:
        held = self.queued + self.running
        return held == 0 or (held < self.window and self._bytes < self.window_bytes)

    def knows(self, run_id: str) -> bool:
        return run_id in self._queued_ids or run_id in self._running

    # -- transitions -----------------------------------------------------------------------
    def assign(self, partitions: Iterable[int]) -> None:
        self.assigned = set(partitions)

    def set_group(self, index: int, holders: int) -> None:
        """This worker is member `index` of the `holders` members holding the agent's partitions."""
        self.index, self.holders = (index, holders) if 0 <= index < holders else (0, 1)
        self._changed()

    def reconfigure(self, *, cap: int, on_conflict: OnConflict) -> None:
        """A new cap and conflict rule for runs starting from now on."""
        self.cap, self.on_conflict = cap, on_conflict
        self._changed()

    def listen(self, wake: Callable[[], None]) -> None:
        """`wake` is called when a change may let queued runs start (the lane starts them)."""
        self._listeners.append(wake)

    def _changed(self) -> None:
        for wake in self._listeners:
            wake()

    def offer(self, ticket: Ticket[P]) -> Admission:
        if self.knows(ticket.run_id):
            return Admission.DUPLICATE
        if ticket.key is not None and self.on_conflict == "drop" and self._key_holders[ticket.key] > 0:
            return Admission.DROPPED
        if ticket.key is not None and self.on_conflict == "coalesce" and self._waiting(ticket.key):
            ticket.replaced = self.withdraw(where=lambda t: t.key == ticket.key)
        self._queue.push(ticket.tenant, ticket, ticket.cost)
        self._queued_ids.add(ticket.run_id)
        if ticket.key is not None:
            self._key_holders[ticket.key] += 1
        self._bytes += ticket.size
        return Admission.QUEUED

    def next(self) -> Ticket[P] | None:
        """Mark the next startable run as running and return it."""
        if not self._queue or self.running >= self.capacity():
            return None  # every slot taken: skip scanning a long queue on each submit
        ticket = self._queue.pick(self._startable)
        if ticket is None:
            return None
        self._queued_ids.discard(ticket.run_id)
        self._running[ticket.run_id] = ticket
        if ticket.key is not None:
            self._running_keys.add(ticket.key)
        return ticket

    def done(self, ticket: Ticket[P]) -> None:
        if self._running.pop(ticket.run_id, None) is None:
            return
        self._release(ticket)
        if ticket.key is not None:
            self._running_keys.discard(ticket.key)

    def withdraw(
        self, partitions: Iterable[int] | None = None, where: Callable[[Ticket[P]], bool] | None = None
    ) -> list[Ticket[P]]:
        """Remove queued (not running) tickets of `partitions` (all when None) for which `where` holds."""
        wanted = None if partitions is None else set(partitions)
        removed = self._queue.remove_where(
            lambda t: (wanted is None or t.partition in wanted) and (where is None or where(t))
        )
        for ticket in removed:
            self._queued_ids.discard(ticket.run_id)
            self._release(ticket)
        return removed

    def running_tickets(self, partitions: Iterable[int] | None = None) -> list[Ticket[P]]:
        wanted = None if partitions is None else set(partitions)
        return [t for t in self._running.values() if wanted is None or t.partition in wanted]

    # -- rules -----------------------------------------------------------------------------
    def _startable(self, ticket: Ticket[P]) -> bool:
        if ticket.partition not in self.assigned:
            return False
        return ticket.key is None or ticket.key not in self._running_keys

    def _waiting(self, key: str) -> bool:
        """Whether a run of `key` is queued (at most one of a key runs, see `_startable`)."""
        return self._key_holders[key] > (1 if key in self._running_keys else 0)

    def _release(self, ticket: Ticket[P]) -> None:
        self._bytes -= ticket.size
        if ticket.key is not None:
            self._key_holders[ticket.key] -= 1
            if self._key_holders[ticket.key] <= 0:
                del self._key_holders[ticket.key]
