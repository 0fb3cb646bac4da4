from __future__ import annotations

from dataclasses import dataclass

from app.streams.ack_order import InOrderAcks


@dataclass
class _Record:
    offset: int
    acked: list[int]
    topic: str = "t"
    partition: int = 0

    def ack(self) -> None:
        self.acked.append(self.offset)


def test_a_finished_record_waits_for_every_earlier_one() -> None:
    acked: list[int] = []
    acks = InOrderAcks()
    records = [_Record(offset, acked) for offset in range(5, 10)]
    for record in records:
        acks.track(record)
    for index in (1, 2, 4):  # offsets 6, 7, 9 finish while 5 still runs
        acks.done(records[index])
    assert acked == []  # faust must not see 6, 7 before 5: it could commit past 5
    acks.done(records[0])
    assert acked == [5, 6, 7]
    acks.done(records[3])
    assert acked == [5, 6, 7, 8, 9]


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    acked: list[int] = []
    acks = InOrderAcks()
    a0, b0 = _Record(0, acked), _Record(0, acked, partition=1)
    a1 = _Record(1, acked)
    for record in (a0, a1, b0):
        acks.track(record)
    acks.done(b0)
    assert acked == [0]
    acks.done(a1)
    assert acks.forget([("t", 0)]) == 2  # a0 never finished: both stay unacked for the next owner
    acks.done(a0)
    assert acked == [0]
