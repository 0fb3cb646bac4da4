"""Where a run result is delivered, with which secret and policy: the connector's settings.

A result goes to its request's `callback_url` (signed with the secret named by
`webhooks.secret_env` in ferry.yaml, checked against the SSRF rule) and to every webhook
connector of the project (`connectors/*.yaml`, `type: webhook`) that listens to
`runs.results` and to its agent (signed with the connector's `secret_env`). Connector
URLs are written by the project's owners and are not SSRF-checked; callback URLs come
from whoever submits a run and are.

Secrets and `${ENV}` placeholders are read from the environment when a delivery is
made, not at start, so a missing one fails that delivery (to the DLQ, with the reason,
replayable once it is set) and never the connector.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from app.connectors.webhook.retry_policy import RetryPolicy
from app.connectors.webhook.ssrf import IPNetwork, allow_list
from app.contracts import RunResult
from app.kafka import IDLE_POLL_MS
from app.project.config import ProjectConfig
from app.project.connectors import WebhookConnectorSpec, result_matches
from app.streams.naming import RESULTS

CALLBACK = "callback"
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def webhooks_group(app_id: str) -> str:
    """The connector's consumer group beside the workers' own: it reads every result once
    per app, whatever the workers' groups do."""
    return f"{app_id}.webhooks"


class WebhookSettings(BaseModel):
    """What an operator tunes; the defaults suit a handful of receivers on the internet."""

    model_config = ConfigDict(frozen=True)

    group_id: str = Field(default="ferry.webhooks", description="Consumer group of the connector.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float = Field(default=10.0, gt=0, description="One attempt's whole time, connect to response.")
    per_destination: int = Field(default=4, ge=1, description="Attempts in flight to one host:port at once.")
    max_in_flight: int = Field(default=256, ge=1, description="Results being delivered at once; fetching waits.")
    poll_ms: int = Field(
        default=200,
        ge=1,
        description="While deliveries are in hand or finished ones wait for their commit, how long one poll "
        "waits for records: how late those are committed, and fetching resumes after a full house.",
    )
    idle_poll_ms: int = Field(
        default=IDLE_POLL_MS,
        ge=1,
        description="With nothing in hand and everything committed, how long one poll waits. A record or a "
        "stop ends the wait at once, so this bounds only an idle connector's wake-ups.",
    )
    fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="aiokafka fetch wait (see PITFALLS): records arriving on a partition in the pending fetch "
        "end it at once, so this costs delivery little; each fetch it saves is idle CPU the worker keeps.",
    )
    flowing_batch_ms: int = Field(
        default=200,
        ge=0,
        description="While results keep coming, how long a fetch may wait for 16 KiB of them: under load the "
        "connector fetches a few times a second instead of once per result (the worker's CPU and the broker's "
        "requests), for at most this much more delivery delay. The first result after a quiet spell is not "
        "delayed. 0 fetches every result at once.",
    )
    commit_interval_s: float = Field(default=0.5, gt=0, description="How often finished offsets are committed.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0, description="On stop: time deliveries in hand get to finish.")


@dataclass(frozen=True)
class Destination:
    """One receiver of one result.

    `identity` names it in the delivery id and the DLQ (`callback:<url>` or
    `connector:<name>`), so a replay finds the same secret and sends the same id.
    """

    identity: str
    url: str
    secret_env: str | None
    guarded: bool  # whether the SSRF rule applies (callback URLs)
    retry: RetryPolicy
    timeout_s: float

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return None if self.secret_env is None else env.get(self.secret_env) or None

    def expanded_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL with `${ENV}` placeholders filled in; KeyError names a missing one."""
        env = os.environ if environ is None else environ
        return _PLACEHOLDER.sub(lambda match: env[match.group(1)], self.url)


class Destinations:
    """The destinations of a project: which receive a given result, and which a DLQ entry names."""

    def __init__(
        self, config: ProjectConfig, connectors: Sequence[WebhookConnectorSpec], settings: WebhookSettings
    ) -> None:
        self.allowed: tuple[IPNetwork, ...] = allow_list(config.webhooks.allow_private)
        self.callback_secret_env = config.webhooks.secret_env
        self.settings = settings
        self.connectors = {spec.name: spec for spec in connectors if RESULTS in spec.topics}
        self.ignored = sorted(spec.name for spec in connectors if RESULTS not in spec.topics)

    def for_result(self, result: RunResult) -> list[Destination]:
        found: list[Destination] = []
        if result.callback_url:
            found.append(self.callback(result.callback_url))
        data = result.model_dump(mode="json") if any(spec.when for spec in self.connectors.values()) else {}
        for spec in self.connectors.values():
            if (not spec.agents or result.agent in spec.agents) and result_matches(spec.when, data):
                found.append(self._connector(spec))
        return found

    def callback(self, url: str) -> Destination:
        return Destination(
            identity=f"{CALLBACK}:{url}",
            url=url,
            secret_env=self.callback_secret_env,
            guarded=True,
            retry=self.settings.retry,
            timeout_s=self.settings.timeout_s,
        )

    def by_identity(self, identity: str, url: str) -> Destination | None:
        """The destination a DLQ entry names; None for a connector no longer in the project."""
        if identity.startswith(f"{CALLBACK}:"):
            return self.callback(url)
        spec = self.connectors.get(identity.removeprefix("connector:"))
        return None if spec is None else self._connector(spec)

    def _connector(self, spec: WebhookConnectorSpec) -> Destination:
        return Destination(
            identity=f"connector:{spec.name}",
            url=spec.url,
            secret_env=spec.secret_env,
            guarded=False,
            retry=self.settings.retry.model_copy(update={"max_attempts": spec.retries + 1}),
            timeout_s=spec.timeout_s,
        )
