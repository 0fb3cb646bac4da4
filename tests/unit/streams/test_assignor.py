from __future__ import annotations

from dataclasses import dataclass

from app.streams.assignor import CoPartitionedAssignor


@dataclass
class _Cluster:
    partitions: dict[str, int]

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.partitions.get(topic)
        return set(range(count)) if count else None


def _assign(topics: dict[str, int], members: int) -> dict[str, dict[str, list[int]]]:
    subscription = CoPartitionedAssignor.metadata(list(topics))
    ids = {f"member-{i}": subscription for i in range(members)}
    plan = CoPartitionedAssignor.assign(_Cluster(topics), ids)  # type: ignore[arg-type]
    return {member: dict(assignment.assignment) for member, assignment in plan.items()}


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
