"""`CoPartitionedAssignor`: partition i of every topic of one agent goes to the same worker.

The concurrency share of partition i (see `shares.py`) covers the agent's request topic
and its pipeline stage topics together, so one worker must hold partition i of all of
them. aiokafka's round-robin assignor (faust's default without tables) spreads them.
Here each topic's partitions go round the members that subscribe to it, starting at an
offset derived from the agent's name: the same for all of that agent's topics, and
different between agents so that partition 0 of every agent does not pile onto one worker.
"""

from __future__ import annotations

import collections
import re
import zlib
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

_REQUEST = re.compile(r"agent\.([^.]+)\.requests$")
_STAGE = re.compile(r"pipeline\.[^.]+\.\d+\.([^.]+)$")


def agent_of(topic: str) -> str:
    """The agent whose runs a topic carries (the topic itself for any other topic)."""
    match = _STAGE.search(topic) or _REQUEST.search(topic)
    return match.group(1) if match else topic


class CoPartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka ships this base untyped
    name = "ferry-copartitioned"
    version = 0

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        plan: dict[str, dict[str, list[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        topics = sorted({t for m in members.values() for t in m.subscription})
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                continue
            subscribers = sorted(mid for mid, meta in members.items() if topic in meta.subscription)
            offset = zlib.crc32(agent_of(topic).encode())
            for partition in sorted(partitions):
                plan[subscribers[(partition + offset) % len(subscribers)]][topic].append(partition)
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(plan[member].items()), b"")
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        return None
