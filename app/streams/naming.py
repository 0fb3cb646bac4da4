"""Topic names: one place that knows how an agent, a pipeline stage or a run topic is spelled.

A `prefix` namespaces every topic of one deployment (tests use a unique prefix so that
runs on a shared broker never meet); topic specs in `topics/` are matched against the
name without the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

RESULTS = "runs.results"
TRACES = "runs.traces"
DLQ = "runs.dlq"
ALERTS = "ferry.alerts"
WEBHOOKS_DLQ = "webhooks.dlq"
CANCELLATIONS = "runs.cancellations"
REPLIES = "ferry.replies."
TRIGGERS = "ferry.triggers"
APPROVALS = "ferry.approvals"


@dataclass(frozen=True)
class TopicNames:
    prefix: str = ""

    def request(self, agent: str) -> str:
        return f"{self.prefix}agent.{agent}.requests"

    def stage(self, pipeline: str, index: int, agent: str) -> str:
        return f"{self.prefix}pipeline.{pipeline}.{index}.{agent}"

    @property
    def results(self) -> str:
        return self.prefix + RESULTS

    @property
    def traces(self) -> str:
        return self.prefix + TRACES

    @property
    def dlq(self) -> str:
        return self.prefix + DLQ

    @property
    def alerts(self) -> str:
        return self.prefix + ALERTS

    @property
    def webhooks_dlq(self) -> str:
        return self.prefix + WEBHOOKS_DLQ

    @property
    def cancellations(self) -> str:
        return self.prefix + CANCELLATIONS

    @property
    def triggers(self) -> str:
        """The time-driven triggers' state (cron ticks, bucket cursors): compacted, one partition."""
        return self.prefix + TRIGGERS

    @property
    def approvals(self) -> str:
        """Runs parked for a human's decision (compacted, one partition, keyed by run id)."""
        return self.prefix + APPROVALS

    def replies(self, instance: str) -> str:
        """One API instance's own topic for the events of its live callers' runs."""
        return f"{self.prefix}{REPLIES}{instance}"

    def unprefixed(self, topic: str) -> str:
        return topic[len(self.prefix) :] if self.prefix and topic.startswith(self.prefix) else topic
