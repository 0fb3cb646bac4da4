"""`StreamSettings`: what an operator tunes for a worker, one validated model.

Defaults favour latency on a small cluster; every knob that changes a measured number
(fetch wait, commit interval) is here so benchmarks can report it.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


def default_broker() -> str | None:
    value = os.environ.get("FERRY_BROKER")
    return value.removeprefix("kafka://") if value else None


class StreamSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap: str = Field(description="Kafka bootstrap servers, host:port[,host:port].")
    app_id: str = Field(default="ferry", description="Consumer group: workers with the same id share partitions.")
    topic_prefix: str = Field(default="", description="Namespace of every topic (tests use a unique one).")
    agents: tuple[str, ...] | None = Field(default=None, description="Agents (and pipelines) to run; None = all.")
    replication: int | None = Field(default=None, ge=1, description="Override the specs' replication.")
    read_ahead: int = Field(default=2000, ge=1, description="Runs queued or running per agent in this worker.")
    read_ahead_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Bytes of those runs.")
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description="Larger requests go to the DLQ.")
    drain_seconds: float = Field(default=20.0, ge=0, description="On stop or rebalance: time runs get to finish.")
    fetch_max_wait_ms: int = Field(
        default=10,
        ge=0,
        description="How long the broker may hold a fetch of the request topics while a partition is left out "
        "of it (records in hand, paused): the delay a record of that partition may see. faust hard-codes 1500.",
    )
    idle_fetch_wait_ms: int = Field(
        default=500,
        ge=0,
        description="How long it may hold one that covers every partition (any record answers it at once): "
        "fewer idle fetches, against the delay of the first fetch after a rebalance (app/kafka/long_poll.py).",
    )
    commit_interval_s: float = Field(default=0.5, gt=0, description="faust broker_commit_interval.")
    commit_every: int = Field(default=100, ge=1, description="faust broker_commit_every (acked messages).")
    session_timeout_s: float = Field(default=10.0, gt=0, description="How fast a dead worker's partitions move.")
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    result_index_size: int = Field(default=200_000, ge=100, description="Recent run ids kept for redelivery checks.")
    rate_share: float = Field(default=1.0, gt=0, le=1, description="This worker's fraction of ferry.yaml quotas.")
    emit_traces: bool = Field(default=True, description="Produce span events to runs.traces.")
    apply_topics: bool = Field(default=True, description="Create/check topics at start.")
