"""`apply_topics`: create missing topics, check existing ones against their spec, report both.

Idempotent: run it on every worker start and from `ferry topics apply`. An existing
topic is never altered (shrinking partitions is impossible and a policy change on a
live topic is an operator's decision); a difference that matters is returned as a
`TopicConflict` for the caller to show, and the worker refuses to start on one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import BaseModel, ConfigDict, Field

from app.contracts.errors import ConfigError
from app.streams.connect import start_client
from app.streams.topic_plan import PlannedTopic

_TOPIC_ALREADY_EXISTS = 36
_CHECKED_CONFIGS = ("cleanup.policy", "retention.ms")


class TopicConflict(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    setting: str
    wanted: str
    actual: str
    why: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, spec wants {self.wanted} ({self.why})"


class ApplyReport(BaseModel):
    created: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)
    conflicts: list[TopicConflict] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts


class TopicConflictError(ConfigError):
    """The broker's topics disagree with the specs in a way that breaks a guarantee."""

    def __init__(self, conflicts: Sequence[TopicConflict]) -> None:
        self.conflicts = list(conflicts)
        found = "; ".join(str(c) for c in conflicts)
        super().__init__(f"topics conflict with their specs: {found} — fix: the topic or the spec")


async def apply_topics(bootstrap: str, plan: Sequence[PlannedTopic], timeout: float = 30.0) -> ApplyReport:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await start_client(admin.start, admin.close, bootstrap)
    try:
        report = ApplyReport()
        response = await admin.create_topics(
            [NewTopic(t.name, t.partitions, t.replication, topic_configs=dict(t.configs)) for t in plan],
            timeout_ms=int(timeout * 1000),
        )
        failures: list[str] = []
        for topic, code, message in response.topic_errors:
            if code == 0:
                report.created.append(topic)
            elif code == _TOPIC_ALREADY_EXISTS:
                report.existing.append(topic)
            else:
                failures.append(f"{topic}: error {code} {message}")
        if failures:
            raise ConfigError(
                "the broker refused to create topics: "
                + "; ".join(failures)
                + " — fix: check the topic specs (replication: --replication) against the cluster"
            )
        # Wait before checking: a topic that already exists may have been created a moment
        # ago (by another worker starting beside this one), and until its metadata has
        # reached the broker it answers with no partitions and no configs.
        await _wait_for_metadata(admin, [t.name for t in plan], timeout)
        if report.existing:
            by_name = {t.name: t for t in plan}
            report.conflicts.extend(await _check_existing(admin, [by_name[n] for n in report.existing]))
        return report
    finally:
        await admin.close()


async def _check_existing(admin: AIOKafkaAdminClient, topics: Sequence[PlannedTopic]) -> list[TopicConflict]:
    conflicts: list[TopicConflict] = []
    described = {d["topic"]: d for d in await admin.describe_topics([t.name for t in topics])}
    for topic in topics:
        actual = len(described.get(topic.name, {}).get("partitions", []))
        if topic.runs_agent:
            # Any count works for an agent's topic: its cap is shared among the workers
            # holding its partitions (shares.py), so the count only bounds how many
            # workers share the agent. Topics made before caps moved to shares have
            # min(spec, cap) partitions and keep working.
            continue
        if actual < topic.partitions:
            conflicts.append(
                TopicConflict(
                    topic=topic.name,
                    setting="partitions",
                    wanted=str(topic.partitions),
                    actual=str(actual),
                    why="fewer partitions than specified: less parallelism than planned",
                )
            )
    resources = [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in topics]
    for response in await admin.describe_configs(resources):
        for error_code, _msg, _type, name, entries in response.resources:
            if error_code != 0:
                continue
            actual_configs = {entry[0]: entry[1] for entry in entries}
            wanted = next(t for t in topics if t.name == name)
            for key in _CHECKED_CONFIGS:
                if key in wanted.configs and actual_configs.get(key) != wanted.configs[key]:
                    conflicts.append(
                        TopicConflict(
                            topic=name,
                            setting=key,
                            wanted=wanted.configs[key],
                            actual=str(actual_configs.get(key)),
                            why="the topic would keep or drop records differently than its spec says",
                        )
                    )
    return conflicts


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: Sequence[str], timeout: float) -> None:
    """A created topic takes a moment to have leaders; a consumer started before that stalls."""
    async with asyncio.timeout(timeout):
        while True:
            described = await admin.describe_topics(list(names))
            if all(
                d["error_code"] == 0 and d["partitions"] and all(p["leader"] >= 0 for p in d["partitions"])
                for d in described
            ):
                return
            await asyncio.sleep(0.1)
