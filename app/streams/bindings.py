"""What consuming each topic means: run an agent (maybe as a pipeline stage) or route a pipeline.

A worker that runs an agent consumes every topic that carries that agent's runs (its
request topic and each pipeline stage topic that uses it): all workers of one agent
then subscribe to the same topics, which the co-partitioned assignor needs to keep the
concurrency cap (see `shares.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.contracts.errors import ConfigError
from app.project.models import SequentialAgentSpec
from app.project.project import Project
from app.streams.naming import TopicNames
from app.streams.topic_plan import PlannedTopic, plan_topics


@dataclass(frozen=True)
class Binding:
    topic: str
    agent: str  # the agent run (or the pipeline routed) from this topic
    route: bool = False  # a pipeline's own request topic: route to stage 0, run nothing
    pipeline: str | None = None
    stage: int | None = None


def check_agents(project: Project, names: Iterable[str]) -> None:
    """`ConfigError` naming the first of `names` the project does not have, and those it has."""
    for name in names:
        if name not in project.agents:
            known = ", ".join(sorted(project.agents)) or "none"
            raise ConfigError(f"no agent {name!r} in {project.root} (known: {known})")


def run_agents(project: Project, selected: Iterable[str] | None) -> tuple[set[str], set[str]]:
    """(pipelines to route, agents to run) for a selection of agent names (None = all)."""
    chosen = set(project.agents) if selected is None else set(selected)
    check_agents(project, sorted(chosen))
    pipelines = {n for n in chosen if isinstance(project.agents[n], SequentialAgentSpec)}
    runs = {n for n in chosen if n not in pipelines}
    for name in pipelines:
        runs.update(project.agents[name].agents)  # type: ignore[union-attr]
    return pipelines, runs


def bindings_for(project: Project, names: TopicNames, selected: Iterable[str] | None) -> list[Binding]:
    pipelines, runs = run_agents(project, selected)
    found: list[Binding] = [Binding(names.request(p), p, route=True, pipeline=p) for p in sorted(pipelines)]
    for agent in sorted(runs):
        found.append(Binding(names.request(agent), agent))
    for pipeline_name, spec in sorted(project.agents.items()):
        if isinstance(spec, SequentialAgentSpec):
            for index, stage_agent in enumerate(spec.agents):
                if stage_agent in runs:
                    found.append(
                        Binding(
                            names.stage(pipeline_name, index, stage_agent),
                            stage_agent,
                            pipeline=pipeline_name,
                            stage=index,
                        )
                    )
    return found


def plan_for_bindings(
    project: Project, names: TopicNames, bindings: Iterable[Binding], replication: int | None
) -> list[PlannedTopic]:
    """The topics behind `bindings` plus the shared run topics (see `topic_plan.plan_topics`)."""
    shared = {names.results, names.traces, names.dlq, names.alerts, names.webhooks_dlq, names.cancellations}
    wanted = {b.topic for b in bindings} | shared
    every = plan_topics(project, names, None, replication)
    return [t for t in every if t.name in wanted]
