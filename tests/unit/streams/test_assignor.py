from __future__ import annotations

import json
from dataclasses import dataclass

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from app.streams.assignor import CoPartitionedAssignor, decode_groups
from app.streams.shares import member_share


@dataclass
class _Cluster:
    partitions: dict[str, int]

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.partitions.get(topic)
        return set(range(count)) if count else None


def _plan(topics: dict[str, int], caps: list[dict[str, int]]) -> dict[str, tuple[dict[str, list[int]], bytes]]:
    ids = {f"member-{i}": CoPartitionedAssignor(lambda c=c: c).metadata(list(topics)) for i, c in enumerate(caps)}
    plan = CoPartitionedAssignor.assign(_Cluster(topics), ids)  # type: ignore[arg-type]
    return {member: (dict(a.assignment), a.user_data) for member, a in plan.items()}


def _assign(topics: dict[str, int], members: int) -> dict[str, dict[str, list[int]]]:
    return {m: parts for m, (parts, _) in _plan(topics, [{}] * members).items()}


def test_partition_i_of_all_topics_of_an_agent_goes_to_one_worker() -> None:
    topics = {"p.agent.x.requests": 6, "p.pipeline.flow.0.x": 6, "p.pipeline.flow.1.y": 6, "p.agent.y.requests": 6}
    plan = _assign(topics, members=4)
    for agent_topics in (("p.agent.x.requests", "p.pipeline.flow.0.x"), ("p.agent.y.requests", "p.pipeline.flow.1.y")):
        for member in plan.values():
            assert {tuple(member.get(t, [])) for t in agent_topics} == {tuple(member.get(agent_topics[0], []))}
    every = sorted((t, p) for member in plan.values() for t, parts in member.items() for p in parts)
    assert every == sorted((t, p) for t, n in topics.items() for p in range(n))  # each exactly once


def test_partitions_spread_over_the_workers() -> None:
    plan = _assign({"agent.x.requests": 12}, members=3)
    assert sorted(len(member.get("agent.x.requests", [])) for member in plan.values()) == [4, 4, 4]


def test_each_member_learns_its_place_among_the_holders_and_the_shares_add_up_to_the_cap() -> None:
    plan = _plan({"agent.x.requests": 12}, [{"x": 16}, {"x": 16}, {"x": 16}])
    groups = [decode_groups(data)["x"] for _, data in plan.values()]
    assert sorted(groups) == [(0, 3), (1, 3), (2, 3)]
    assert sum(member_share(16, holders, index) for index, holders in groups) == 16


def test_a_cap_below_the_number_of_workers_gives_the_partitions_to_cap_members_only() -> None:
    """Otherwise some member would hold partitions with a share of 0: their runs would never start."""
    plan = _plan({"agent.x.requests": 12, "agent.y.requests": 12}, [{"x": 2, "y": 9}] * 3)
    holding_x = [m for m, (parts, _) in plan.items() if parts.get("agent.x.requests")]
    assert len(holding_x) == 2
    assert sorted(p for parts, _ in plan.values() for p in parts.get("agent.x.requests", [])) == list(range(12))
    for member in holding_x:
        index, holders = decode_groups(plan[member][1])["x"]
        assert holders == 2 and member_share(2, holders, index) == 1
    assert all(parts.get("agent.y.requests") for parts, _ in plan.values())  # y's cap leaves room for all 3


def test_members_disagreeing_mid_change_are_held_to_the_lowest_cap() -> None:
    plan = _plan({"agent.x.requests": 12}, [{"x": 1}, {"x": 4}, {}])  # the third announces nothing
    assert sum(1 for parts, _ in plan.values() if parts.get("agent.x.requests")) == 1


def test_an_older_member_without_user_data_is_read_as_announcing_nothing() -> None:
    old = ConsumerProtocolMemberMetadata(0, ["agent.x.requests"], b"")
    plan = CoPartitionedAssignor.assign(_Cluster({"agent.x.requests": 4}), {"a": old, "b": old})  # type: ignore[arg-type]
    assert {decode_groups(a.user_data)["x"][1] for a in plan.values()} == {2}
    assert json.loads(plan["a"].user_data)["subscribers"] == {"x": 2}
