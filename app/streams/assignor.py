"""`CoPartitionedAssignor`: partition i of every topic of one agent goes to the same worker,
and every worker learns its share of each agent's cap from the assignment itself.

Each topic's partitions go round the members that subscribe to it, starting at an offset
derived from the agent's name: the same for all of that agent's topics, and different
between agents so that partition 0 of every agent does not pile onto one worker.

Two things ride along with the partitions (see `shares.py`):
  - in a member's subscription, the caps (`max_concurrent_runs`) of the deployment it
    runs: the agent's partitions go to at most `cap` members (the lowest cap announced),
    so no member that holds partitions has a share of 0;
  - in a member's assignment, per agent, how many members hold the agent's partitions
    and this member's place among them: its share of the cap is computed from that.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

_REQUEST = re.compile(r"agent\.([^.]+)\.requests$")
_STAGE = re.compile(r"pipeline\.[^.]+\.\d+\.([^.]+)$")
log = logging.getLogger(__name__)


def agent_of(topic: str) -> str:
    """The agent whose runs a topic carries (the topic itself for any other topic)."""
    match = _STAGE.search(topic) or _REQUEST.search(topic)
    return match.group(1) if match else topic


def _caps_of(metadata: ConsumerProtocolMemberMetadata) -> dict[str, int]:
    try:
        caps = json.loads(metadata.user_data or b"{}").get("caps", {})
        return {str(k): int(v) for k, v in caps.items() if int(v) >= 1}
    except (ValueError, TypeError, AttributeError):
        return {}  # a member of an older Ferry: announces nothing


def decode_groups(user_data: bytes | None) -> dict[str, tuple[int, int]]:
    """agent → (this member's index, holders) from an assignment's user data."""
    try:
        groups = json.loads(user_data or b"{}").get("groups", {})
        return {str(agent): (int(pair[0]), int(pair[1])) for agent, pair in groups.items()}
    except (ValueError, TypeError, AttributeError, IndexError):
        return {}


class CoPartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka ships this base untyped
    """One per consumer: `caps` reads the worker's caps in force when it (re)joins, and
    `groups` keeps what the last assignment said (read by the worker once it is assigned)."""

    name = "ferry-copartitioned"
    version = 0

    def __init__(self, caps: Callable[[], Mapping[str, int]] | None = None) -> None:
        self._caps = caps or dict
        self.groups: dict[str, tuple[int, int]] = {}
        self.holders: dict[str, int] = {}  # agent → members holding its partitions
        self.subscribers: dict[str, int] = {}  # agent → members consuming its topics

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        plan: dict[str, dict[str, list[int]]] = collections.defaultdict(lambda: collections.defaultdict(list))
        announced = {mid: _caps_of(meta) for mid, meta in members.items()}
        topics = sorted({t for m in members.values() for t in m.subscription})
        holders: dict[str, set[str]] = collections.defaultdict(set)
        subscribed: dict[str, set[str]] = collections.defaultdict(set)
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                continue
            agent = agent_of(topic)
            subscribers = sorted(mid for mid, meta in members.items() if topic in meta.subscription)
            subscribed[agent].update(subscribers)
            offset = zlib.crc32(agent.encode())
            caps = [c[agent] for c in announced.values() if agent in c]
            room = min(len(subscribers), min(caps)) if caps else len(subscribers)
            eligible = [subscribers[(offset + j) % len(subscribers)] for j in range(room)]
            eligible.sort()
            for partition in sorted(partitions):
                member = eligible[(partition + offset) % len(eligible)]
                plan[member][topic].append(partition)
                holders[agent].add(member)
        result = {}
        for member in members:
            groups = {}
            for agent, held_by in holders.items():
                ordered = sorted(held_by)
                if member in held_by:
                    groups[agent] = [ordered.index(member), len(ordered)]
            data = {
                "groups": groups,
                "holders": {a: len(h) for a, h in holders.items()},
                "subscribers": {a: len(s) for a, s in subscribed.items()},
            }
            result[member] = ConsumerProtocolMemberAssignment(
                cls.version, sorted(plan[member].items()), json.dumps(data).encode()
            )
        return result

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        caps = {agent: int(cap) for agent, cap in self._caps().items()}
        return ConsumerProtocolMemberMetadata(self.version, list(topics), json.dumps({"caps": caps}).encode())

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Runs in the consumer's thread, before the worker hears of the assignment."""
        self.groups = decode_groups(assignment.user_data)
        try:
            data = json.loads(assignment.user_data or b"{}")
            self.holders = {str(k): int(v) for k, v in data.get("holders", {}).items()}
            self.subscribers = {str(k): int(v) for k, v in data.get("subscribers", {}).items()}
        except (ValueError, TypeError, AttributeError):
            self.holders, self.subscribers = {}, {}
