from __future__ import annotations

from aiokafka import TopicPartition

from app.connectors.webhook.offsets import PendingOffsets

P0 = TopicPartition("runs.results", 0)
P1 = TopicPartition("runs.results", 1)


def test_commit_stops_below_the_oldest_delivery_in_hand() -> None:
    offsets = PendingOffsets()
    tokens = {offset: offsets.fetched(P0, offset) for offset in (5, 6, 7)}
    assert offsets.to_commit() == {P0: 5}
    offsets.done(P0, 6, tokens[6])
    offsets.done(P0, 7, tokens[7])
    assert offsets.to_commit() == {P0: 5}  # 5 is still being delivered
    offsets.done(P0, 5, tokens[5])
    assert offsets.to_commit() == {P0: 8}
    assert offsets.in_hand == 0


def test_only_moved_positions_are_committed_again() -> None:
    offsets = PendingOffsets()
    token = offsets.fetched(P0, 0)
    offsets.fetched(P1, 3)
    offsets.done(P0, 0, token)
    assert offsets.to_commit() == {P0: 1, P1: 3}
    offsets.committed({P0: 1, P1: 3})
    assert offsets.to_commit() == {}
    assert offsets.to_commit([P1]) == {}


def test_a_delivery_of_a_revoked_assignment_does_not_release_the_new_one() -> None:
    offsets = PendingOffsets()
    old = offsets.fetched(P0, 4)
    offsets.forget([P0])
    new = offsets.fetched(P0, 4)  # the partition came back and offset 4 is delivered again
    offsets.done(P0, 4, old)
    assert offsets.to_commit() == {P0: 4}
    offsets.done(P0, 4, new)
    assert offsets.to_commit() == {P0: 5}


def test_a_result_with_nothing_to_deliver_moves_the_commit_only_past_what_is_done() -> None:
    offsets = PendingOffsets()
    token = offsets.fetched(P0, 10)  # being delivered
    offsets.passed(P0, 11)  # no destination
    assert offsets.to_commit() == {P0: 10}
    offsets.done(P0, 10, token)
    assert offsets.to_commit() == {P0: 12}
    offsets.passed(P1, 0)
    assert offsets.to_commit()[P1] == 1 and offsets.in_hand == 0
