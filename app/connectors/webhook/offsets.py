"""Which offsets the connector may commit: those below the oldest delivery still in hand.

Deliveries of one partition finish in any order (a slow receiver, a retry waiting), but a
committed offset says everything before it is done. So per partition the connector
commits the oldest offset still in hand, or the next one to fetch when nothing is.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition


class PendingOffsets:
    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._generation: dict[TopicPartition, int] = {}

    def fetched(self, partition: TopicPartition, offset: int) -> int:
        """Track `offset`; returns the token its `done` must bring back."""
        self._pending.setdefault(partition, set()).add(offset)
        self.passed(partition, offset)
        return self._generation.get(partition, 0)

    def passed(self, partition: TopicPartition, offset: int) -> None:
        """`offset` needs no delivery: done as soon as fetched."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def done(self, partition: TopicPartition, offset: int, token: int) -> None:
        """`offset` is delivered or dead-lettered; ignored if the partition left meanwhile
        (a delivery of the old assignment must not release the new one's offset)."""
        pending = self._pending.get(partition)
        if pending is not None and token == self._generation.get(partition, 0):
            pending.discard(offset)

    @property
    def in_hand(self) -> int:
        return sum(len(pending) for pending in self._pending.values())

    def to_commit(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The positions that moved since they were last marked committed."""
        chosen = self._next.keys() if partitions is None else [p for p in partitions if p in self._next]
        moved: dict[TopicPartition, int] = {}
        for partition in chosen:
            pending = self._pending.get(partition)
            position = min(pending) if pending else self._next[partition]
            if self._committed.get(partition) != position:
                moved[partition] = position
        return moved

    def committed(self, positions: dict[TopicPartition, int]) -> None:
        self._committed.update(positions)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions that left this member: their deliveries in hand no longer count."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
            self._generation[partition] = self._generation.get(partition, 0) + 1
