"""Fair scheduling over tenants: a tenant with a deep backlog cannot starve another.

Deficit round robin keeps, per tenant, how much service it is owed. Here that account
is kept the other way round, as the service each tenant has had (`served`, in cost
units): the next run goes to the tenant that has had the least, among tenants with a
run the caller can start now. With every tenant runnable this is round robin with
deficits; the difference matters when runs are blocked (their partition's share is
in use, their concurrency key is busy): plain round robin then hands a blocked
tenant's turn to whoever is runnable and forgets it, so a tenant whose runs hash onto
a busy partition would get at best every other slot there. Counting service instead
lets it win the slot as soon as it frees.

A tenant that arrives (or comes back after its queue emptied) starts at the least
`served` of the tenants already queued: idle time earns no credit to burst with later.
Ties go to the tenant served longest ago.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Tenant(Generic[T]):
    served: float
    last_pick: int = 0
    queue: list[tuple[T, float]] = field(default_factory=list)


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._tenants: dict[str, _Tenant[T]] = {}
        self._size = 0
        self._picks = 0
        self._floor = 0.0  # `served` of the most recent pick: where a lone newcomer starts

    def __len__(self) -> int:
        return self._size

    def push(self, tenant: str, item: T, cost: float = 1.0) -> None:
        state = self._tenants.get(tenant)
        if state is None:
            start = min((t.served for t in self._tenants.values()), default=self._floor)
            state = self._tenants[tenant] = _Tenant(served=start)
        state.queue.append((item, cost))
        self._size += 1

    def served(self, tenant: str) -> float | None:
        state = self._tenants.get(tenant)
        return None if state is None else state.served

    def items(self) -> Iterator[tuple[str, T]]:
        for tenant, state in self._tenants.items():
            for item, _ in state.queue:
                yield tenant, item

    def remove_where(self, predicate: Callable[[T], bool]) -> list[T]:
        removed: list[T] = []
        for tenant in list(self._tenants):
            state = self._tenants[tenant]
            removed.extend(item for item, _ in state.queue if predicate(item))
            state.queue = [(item, cost) for item, cost in state.queue if not predicate(item)]
            if not state.queue:
                del self._tenants[tenant]
        self._size -= len(removed)
        return removed

    def pick(self, runnable: Callable[[T], bool] = lambda _: True) -> T | None:
        """The next item to start, or None when every queued item is blocked."""
        best: tuple[float, int, str, int] | None = None
        for tenant, state in self._tenants.items():
            rank = (state.served, state.last_pick)
            if best is not None and rank >= best[:2]:
                continue
            index = next((i for i, (item, _) in enumerate(state.queue) if runnable(item)), None)
            if index is not None:
                best = (state.served, state.last_pick, tenant, index)
        if best is None:
            return None
        tenant, index = best[2], best[3]
        state = self._tenants[tenant]
        item, cost = state.queue.pop(index)
        self._size -= 1
        self._picks += 1
        state.served += cost
        state.last_pick = self._picks
        self._floor = state.served
        if not state.queue:
            del self._tenants[tenant]
        return item
