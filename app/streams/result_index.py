"""Which run ids already have a result: how a redelivered request is recognised and skipped.

Kafka redelivers a request whose offset was not committed: after a crash between
producing the result and committing, or after a rebalance. Results are keyed by
run_id on `runs.results`, so the worker keeps a bounded set (the most recent
`capacity` ids, FIFO-evicted) fed by a consumer of that topic that starts
`capacity / partitions` records before the end of each partition, and adds its own
results as soon as they are produced.

A result produced by another worker just before a rebalance must be seen before the
redelivered request is judged: `catch_up()` waits until the index has read
`runs.results` up to the end offsets of the moment it is called (the worker calls it
on every assignment, before running anything).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from aiokafka import ConsumerRecord

from app.streams.topic_tail import BATCHED, TopicTail


class ResultIndex:
    def __init__(self, bootstrap: str, topic: str, *, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._tail = TopicTail(
            bootstrap, topic, self._take, keep=capacity, fetch_max_wait_ms=BATCHED.wait_ms, flowing=BATCHED
        )

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, run_id: str) -> None:
        self._ids[run_id] = None
        self._ids.move_to_end(run_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    async def start(self) -> None:
        """Read the last `capacity` results; on any failure, stop what was started and raise."""
        await self._tail.start()

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once every result produced before this call is in the index."""
        await self._tail.catch_up(timeout)

    async def stop(self) -> None:
        await self._tail.stop()

    def _take(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is not None:
                self.add(record.key.decode("utf-8", "replace"))
