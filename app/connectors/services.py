"""The connectors a process runs beside (or instead of) the agents, built in one place.

`ferry worker` and `ferry connectors run` run the same connectors in the same consumer
groups (`<app-id>.webhooks`, `<app-id>.sinks`, `<app-id>.inbound`), so whichever
processes run them share the work and each result or inbound record is handled once:

    webhooks   runs.results → callback URLs and webhook connectors (docs/webhooks.md)
    sinks      runs.results → the `sink.*` topics of fed Kafka Connect sinks
    inbound    records of inbound topics → run requests (connectors/README.md)
    triggers   cron ticks, bucket listings and S3 notifications → run requests
               (`<app-id>.triggers` elects the one process that fires ticks and lists)

`prepare_connectors` creates the topics they write and checks that the inbound topics
exist (they are the user's: Ferry never creates them), then builds the services, not
started: their owner starts them in `ConnectorServices.all()` order and stops them in
reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.connectors.inbound import InboundConnector, inbound_group, inbound_specs
from app.connectors.sinks import SinkFeeder, feeds_of, sinks_group
from app.connectors.triggers import Triggers, trigger_specs
from app.connectors.webhook import WebhookConnector, WebhookSettings, destinations_for
from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.project.connectors import S3ConnectorSpec
from app.project.project import Project
from app.streams import TopicNames, apply_topics
from app.streams.connect import topic_partitions
from app.streams.topic_plan import plan_topic, plan_topics


@dataclass(frozen=True)
class ConnectorServices:
    webhooks: WebhookConnector | None
    feeder: SinkFeeder | None
    inbound: InboundConnector | None
    triggers: Triggers | None = None

    def all(self) -> list[WebhookConnector | SinkFeeder | InboundConnector | Triggers]:
        """In start order: deliveries first, what starts new runs last."""
        return [s for s in (self.webhooks, self.feeder, self.inbound, self.triggers) if s is not None]


async def prepare_connectors(
    project: Project,
    names: TopicNames,
    bootstrap: str,
    app_id: str,
    *,
    webhooks: WebhookSettings | None,
    sinks_and_inbound: bool = True,
    replication: int | None = None,
) -> ConnectorServices:
    """`webhooks`: the connector's settings, None to run no webhook connector;
    `sinks_and_inbound`: False to run neither of the others."""
    feeds = feeds_of(project, names) if sinks_and_inbound else []
    inbound = inbound_specs(project) if sinks_and_inbound else []
    triggers = trigger_specs(project) if sinks_and_inbound else []
    inbound_agents = sorted({spec.agent for spec in [*inbound, *triggers]})
    written = {names.request(agent) for agent in inbound_agents}
    if webhooks is not None:
        written |= {names.results, names.webhooks_dlq}
    planned = [t for t in plan_topics(project, names, inbound_agents, replication) if t.name in written]
    planned += [plan_topic(project, names, topic, replication) for topic in sorted({f.topic for f in feeds})]
    if triggers:
        planned.append(plan_topic(project, names, names.triggers, replication))
    # The store's notification topics are plumbing of the trigger (unprefixed: the store names
    # them): created when missing, so a worker starts before the store's first event; one
    # that exists is left as its owner made it.
    for topic in sorted({s.events_topic for s in triggers if isinstance(s, S3ConnectorSpec) and s.events_topic}):
        try:
            await topic_partitions(bootstrap, topic)
        except ServiceUnreachableError:
            raise
        except ConfigError:
            planned.append(plan_topic(project, TopicNames(), topic, replication))
    if planned:
        await apply_topics(bootstrap, planned)
    for topic in sorted({spec.topic for spec in inbound}):
        await topic_partitions(bootstrap, topic)  # a missing inbound topic: one ConfigError line
    return ConnectorServices(
        webhooks=(
            WebhookConnector(bootstrap, names, destinations_for(project, webhooks), webhooks)
            if webhooks is not None
            else None
        ),
        feeder=SinkFeeder(bootstrap, names, feeds, group_id=sinks_group(app_id)) if feeds else None,
        inbound=(
            InboundConnector(bootstrap, project, names, inbound, group_id=inbound_group(app_id)) if inbound else None
        ),
        triggers=Triggers(bootstrap, project, names, app_id) if triggers else None,
    )
