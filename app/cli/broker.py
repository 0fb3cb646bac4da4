"""Which Kafka a command talks to: `--broker`, else `$FERRY_BROKER`, else the dev stack's."""

from __future__ import annotations

NO_BROKER = "ferry: error: no broker — fix: set FERRY_BROKER, pass --broker, or run `ferry dev up`"


def broker_address(explicit: str | None = None) -> str | None:
    from app.devstack.stack import DevStack, default_home
    from app.streams.settings import default_broker

    if explicit:
        return explicit.removeprefix("kafka://")
    configured = default_broker()
    if configured:
        return configured
    kafka = DevStack(default_home()).running().get("kafka")
    return kafka.address if kafka else None
