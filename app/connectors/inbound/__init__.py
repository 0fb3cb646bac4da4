"""Inbound topics: any existing topic triggers an agent (connectors/*.yaml, `type: inbound`).

inbound = InboundConnector(bootstrap, project, names, inbound_specs(project), group_id=inbound_group(app_id))
await inbound.start()   # ... await inbound.stop()
"""

from __future__ import annotations

from app.connectors.inbound.service import (
    KAFKA_METADATA,
    TRIGGER_SOURCE,
    InboundConnector,
    inbound_group,
    inbound_request,
    inbound_specs,
    record_input,
)

__all__ = [
    "KAFKA_METADATA",
    "TRIGGER_SOURCE",
    "InboundConnector",
    "inbound_group",
    "inbound_request",
    "inbound_specs",
    "record_input",
]
