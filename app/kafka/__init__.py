"""Kafka client pieces every layer that reads Kafka shares (streams, observability,
connectors, deploy); imports nothing of app, so none of those layers has to import another.

LongPollConsumer / long_poll    consumers that cost nothing while their topics are quiet
"""

from app.kafka.long_poll import LongPollConsumer, long_poll

__all__ = ["LongPollConsumer", "long_poll"]
