"""Which topics a project needs, with which settings: the input of `ferry topics apply`.

Every agent gets `agent.<name>.requests`; every sequential pipeline gets one topic per
stage, `pipeline.<p>.<i>.<agent>`; all share `runs.results`, `runs.traces`, `runs.dlq`
and `ferry.alerts` (spend alerts), `webhooks.dlq` (failed webhook deliveries) and
`runs.cancellations` (cancel requests, read by every worker).
Settings come from the first matching spec in the project's `topics/`, else from the
defaults below (the same as the example project's `topics/ferry.yaml`).

Every topic that carries an agent's runs gets the same count: the spec's partitions,
fixed at creation and independent of `max_concurrent_runs`. The cap is shared among the
workers holding those partitions (see `shares.py`), so a deployment may change it
without touching a topic; the partition count only bounds how many workers can share
one agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from app.project.models import SequentialAgentSpec
from app.project.project import Project
from app.project.topics import TopicSpec
from app.streams.naming import TopicNames

DEFAULT_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec.model_validate(
        {"class": "requests", "pattern": "agent.*.requests", "partitions": 12, "retention_ms": 604_800_000}
    ),
    TopicSpec.model_validate(
        {"class": "pipeline", "pattern": "pipeline.*.*.*", "partitions": 12, "retention_ms": 604_800_000}
    ),
    TopicSpec.model_validate(
        {"class": "results", "name": "runs.results", "partitions": 6, "cleanup_policy": "compact"}
    ),
    TopicSpec.model_validate({"class": "traces", "name": "runs.traces", "partitions": 6, "retention_ms": 259_200_000}),
    TopicSpec.model_validate({"class": "dlq", "name": "runs.dlq", "partitions": 1, "retention_ms": 2_592_000_000}),
    TopicSpec.model_validate(
        {"class": "alerts", "name": "ferry.alerts", "partitions": 1, "retention_ms": 7_776_000_000}
    ),
    TopicSpec.model_validate({"class": "dlq", "name": "webhooks.dlq", "partitions": 1, "retention_ms": 2_592_000_000}),
    TopicSpec.model_validate(
        {"class": "other", "name": "runs.cancellations", "partitions": 1, "cleanup_policy": "compact"}
    ),
    TopicSpec.model_validate({"class": "results", "pattern": "sink.*", "partitions": 6, "cleanup_policy": "compact"}),
    # The cron and bucket triggers' state; its one partition elects the process that fires them.
    TopicSpec.model_validate(
        {"class": "other", "name": "ferry.triggers", "partitions": 1, "cleanup_policy": "compact"}
    ),
    # Runs parked for a human's approval (app/streams/approvals.py).
    TopicSpec.model_validate(
        {"class": "other", "name": "ferry.approvals", "partitions": 1, "cleanup_policy": "compact"}
    ),
)


class PlannedTopic(BaseModel):
    """One concrete topic and the settings it must have."""

    model_config = ConfigDict(frozen=True)

    name: str
    partitions: int
    replication: int
    configs: dict[str, str]
    cleanup_policy: str
    agent: str | None = None  # the agent whose runs this topic carries
    pipeline: str | None = None  # set on stage topics (and on a pipeline's request topic)
    stage: int | None = None

    @property
    def runs_agent(self) -> bool:
        """Whether consuming this topic runs `agent` (a pipeline's own request topic only routes)."""
        return self.agent is not None and not (self.pipeline is not None and self.stage is None)


def _spec_for(unprefixed: str, specs: Sequence[TopicSpec]) -> TopicSpec:
    for spec in (*specs, *DEFAULT_SPECS):
        if spec.matches(unprefixed):
            return spec
    return TopicSpec(name=unprefixed)


def agent_partitions(project: Project, names: TopicNames, agent: str) -> int:
    """Partitions of every topic that carries `agent`'s runs (its request topic's spec)."""
    spec = _spec_for(names.unprefixed(names.request(agent)), project.topics)
    return max(1, spec.partitions)


def _planned(
    names: TopicNames,
    topic: str,
    specs: Sequence[TopicSpec],
    partitions: int | None,
    replication: int | None,
    **binding: object,
) -> PlannedTopic:
    spec = _spec_for(names.unprefixed(topic), specs)
    configs = {str(k): str(v) for k, v in spec.config.items()}
    configs["cleanup.policy"] = spec.cleanup_policy
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    partitions = partitions or spec.partitions
    return PlannedTopic(
        name=topic,
        partitions=partitions,
        replication=replication or spec.replication,
        configs=configs,
        cleanup_policy=spec.cleanup_policy,
        **binding,  # type: ignore[arg-type]
    )


def internal_replication(project: Project, names: TopicNames, replication: int | None = None) -> int:
    """The replication of the topics Ferry creates while it runs (checkpoints, retry and
    failed-runs topics): the one asked for, else what the project's specs give
    `runs.results` — never a silent 1 on a cluster whose specs say 3."""
    return replication or plan_topic(project, names, names.results).replication


def plan_topic(project: Project, names: TopicNames, topic: str, replication: int | None = None) -> PlannedTopic:
    """Any other topic Ferry produces (a connector's `sink.*` feed topic), with its spec's settings."""
    return _planned(names, topic, project.topics, None, replication)


def plan_topics(
    project: Project,
    names: TopicNames,
    agents: Iterable[str] | None = None,
    replication: int | None = None,
) -> list[PlannedTopic]:
    """The topics to consume for `agents` (default all) plus the shared run topics.

    A pipeline in `agents` brings its stage topics; `replication` overrides the specs
    (a one-broker dev stack cannot hold replication 3).
    """
    wanted = set(project.agents) if agents is None else set(agents)
    specs = project.topics
    plan: list[PlannedTopic] = []
    for name in sorted(wanted):
        spec = project.agent(name)
        if isinstance(spec, SequentialAgentSpec):
            # The router takes no concurrency slot; each stage has its agent's own cap.
            plan.append(_planned(names, names.request(name), specs, None, replication, agent=name, pipeline=name))
            for index, stage_agent in enumerate(spec.agents):
                partitions = agent_partitions(project, names, stage_agent)
                plan.append(
                    _planned(
                        names,
                        names.stage(name, index, stage_agent),
                        specs,
                        partitions,
                        replication,
                        agent=stage_agent,
                        pipeline=name,
                        stage=index,
                    )
                )
        else:
            partitions = agent_partitions(project, names, name)
            plan.append(_planned(names, names.request(name), specs, partitions, replication, agent=name))
    for shared in (names.results, names.traces, names.dlq, names.alerts, names.webhooks_dlq, names.cancellations):
        plan.append(_planned(names, shared, specs, None, replication))
    return plan
