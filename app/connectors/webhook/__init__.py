"""Signed webhook delivery of run results (see docs/webhooks.md).

    connector = WebhookConnector(bootstrap, TopicNames(prefix), destinations_for(project, settings), settings)
    await connector.start()   # ... await connector.stop()

`check_callback_url` is the SSRF rule for callers that accept callback URLs (the HTTP API
at submission); the connector applies it again at delivery.
"""

from __future__ import annotations

from app.connectors.webhook.config import Destination, Destinations, WebhookSettings, webhooks_group
from app.connectors.webhook.dead_letters import WebhookDeadLetter
from app.connectors.webhook.replay import ReplayReport, replay_dead_letters, replay_group
from app.connectors.webhook.retry_policy import RetryPolicy
from app.connectors.webhook.service import WebhookConnector, WebhookStats
from app.connectors.webhook.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    delivery_id,
    sign,
    verify,
)
from app.connectors.webhook.ssrf import CallbackRefused, allow_list, check_callback_url
from app.project.connectors import WebhookConnectorSpec
from app.project.project import Project


def destinations_for(project: Project, settings: WebhookSettings | None = None) -> Destinations:
    """The destinations of `project`: its ferry.yaml `webhooks:` and its webhook connectors."""
    specs = [spec for spec in project.connectors.values() if isinstance(spec, WebhookConnectorSpec)]
    return Destinations(project.config, specs, settings or WebhookSettings())


__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackRefused",
    "Destination",
    "Destinations",
    "ReplayReport",
    "RetryPolicy",
    "WebhookConnector",
    "WebhookDeadLetter",
    "WebhookSettings",
    "WebhookStats",
    "allow_list",
    "check_callback_url",
    "delivery_id",
    "destinations_for",
    "replay_dead_letters",
    "replay_group",
    "sign",
    "verify",
    "webhooks_group",
]
