"""Run results into users' databases through Kafka Connect (see connectors/README.md).

feeder = SinkFeeder(bootstrap, names, feeds_of(project, names), group_id=sinks_group(app_id))
await feeder.start()   # ... await feeder.stop()
apply_connectors(ConnectClient(url), specs, names)   # ferry connectors apply
"""

from __future__ import annotations

from app.connectors.sinks.apply import ConnectClient, ConnectorState, apply_connectors, resolved_config
from app.connectors.sinks.feeder import Feed, FeedStats, SinkFeeder, feeds_of, sinks_group
from app.connectors.sinks.records import feed_record, value_schema

__all__ = [
    "ConnectClient",
    "ConnectorState",
    "Feed",
    "FeedStats",
    "SinkFeeder",
    "apply_connectors",
    "feed_record",
    "feeds_of",
    "resolved_config",
    "sinks_group",
    "value_schema",
]
