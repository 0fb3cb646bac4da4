"""Kafka client pieces every layer that reads Kafka shares (streams, observability,
connectors, deploy); imports nothing of app, so none of those layers has to import another.

LongPollConsumer / long_poll    consumers that cost nothing while their topics are quiet
KeyPartitioner / key_partition  Kafka's default partitioner for keyed records, cheaper
"""

from app.kafka.long_poll import IDLE_POLL_MS, FlowingBatch, LongPollConsumer, long_poll
from app.kafka.partitioner import KeyPartitioner, key_partition

__all__ = ["IDLE_POLL_MS", "FlowingBatch", "KeyPartitioner", "LongPollConsumer", "key_partition", "long_poll"]
