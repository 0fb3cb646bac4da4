"""`InOrderAcks`: a record is acked only once every record before it in its partition is done.

Runs finish out of order, and faust commits "the first run of consecutive acked
offsets". Its check for a gap *before* that run is off by one in faust-streaming 0.15
(`min(acked) - committed > 1`, with `committed` the next offset to read) and skipped
entirely while nothing has been committed yet, so with offset 5 still running and 6, 7
acked it may commit 8: a crash then loses run 5. Handing faust the acks in arrival
order (records of one partition arrive in offset order) leaves it no gap to misjudge.
A record never marked done (its run was withdrawn on a rebalance, or cancelled on
stop) holds back every later ack of its partition, so none of them is committed and
Kafka delivers them all again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol


class Ackable(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    def ack(self) -> None: ...


class InOrderAcks:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], OrderedDict[int, list[object]]] = {}

    def track(self, record: Ackable) -> None:
        """Call as each record is read, before its processing can finish."""
        queue = self._pending.setdefault((record.topic, record.partition), OrderedDict())
        queue[record.offset] = [record, False]

    def done(self, record: Ackable) -> None:
        queue = self._pending.get((record.topic, record.partition))
        entry = queue.get(record.offset) if queue is not None else None
        if queue is None or entry is None:
            return  # its partition was given up meanwhile: leave it to the next owner
        entry[1] = True
        while queue:
            offset, (head, finished) = next(iter(queue.items()))
            if not finished:
                break
            del queue[offset]
            head.ack()  # type: ignore[attr-defined]

    def forget(self, partitions: Iterable[tuple[str, int]]) -> int:
        """Drop the state of revoked partitions; returns how many records stay unacked."""
        dropped = 0
        for key in partitions:
            dropped += len(self._pending.pop(key, {}))
        return dropped

    def waiting(self, topic: str, partition: int) -> int:
        return len(self._pending.get((topic, partition), {}))
