"""Running a run's request again: `ferry replay`, `ferry dlq replay`.

Where failed work waits to be run again:

    runs.dlq              `DeadLetter`: records that never became a run (their bytes)
    agent.<name>.failed   `FailedRun`: runs that failed with a category the agent's
                          ferry.yaml `durability.agents.<name>.failed_runs` lists (the
                          request and the result), written just before the run's result

A replay is a **new run** (a new run id) of the original request, linked to it through
its trigger: `trigger.source = "replay"`, `trigger.metadata.replay_of` = the original
run id (and its original trigger), on the agent's request topic, pinned to a deployment
when asked (`--deployment V`: "fix the prompt, deploy, replay yesterday's failures").
`ferry dlq replay` derives the new run id from the original's and the deployment, so
running the same replay twice runs each failure once (a worker skips a run id that has a
result); `ferry replay RUN_ID` makes a fresh one each time, as asked.

A finished run's request is found without the history store: its result (compacted
`runs.results`) says its agent and when it ran, and the agent's request topic is read
from shortly before that time until the request shows up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.contracts import RunRequest, RunResult, Trigger
from app.contracts.errors import BadInputError, ErrorCategory
from app.contracts.runs import utc_now
from app.streams.connect import start_client, topic_partitions
from app.streams.messages import DeadLetter
from app.streams.naming import TopicNames

REPLAY_SOURCE = "replay"
_REPLAY_NAMESPACE = uuid.UUID("6f1d3a52-4c7e-4b8a-9d0e-2a5b7c1e9f31")
#: How far before a run's start its request is looked for (producer clocks, queueing).
_REQUEST_SLACK = timedelta(hours=1)


def failed_topic(names: TopicNames, agent: str) -> str:
    return f"{names.prefix}agent.{agent}.failed"


class FailedRun(BaseModel):
    """One record of an agent's failed-runs topic (key: the run id)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    run_id: str
    agent: str
    category: ErrorCategory
    message: str
    request: RunRequest
    result: RunResult
    failed_at: datetime = Field(default_factory=utc_now)


def replay_of(
    original: RunRequest, *, deployment: str | None, run_id: str | None = None, via: str = "cli"
) -> RunRequest:
    """The new run of `original`'s request: same agent, input, tenant, context and history;
    a new id, no deadline (the original's has passed), linked through its trigger."""
    metadata: dict[str, Any] = {
        "replay_of": original.run_id,
        "via": via,
        "original_trigger": original.trigger.model_dump(mode="json"),
    }
    if original.deployment is not None:
        metadata["original_deployment"] = original.deployment
    return RunRequest(
        run_id=run_id or str(uuid.uuid4()),
        agent=original.agent,
        input=dict(original.input),
        tenant=original.tenant,
        trigger=Trigger(source=REPLAY_SOURCE, metadata=metadata),
        callback_url=original.callback_url,
        deployment=deployment,
        context=dict(original.context),
        history=list(original.history),
    )


def stable_replay_id(original_run_id: str, deployment: str | None) -> str:
    """The same replay of the same run twice is one run."""
    return str(uuid.uuid5(_REPLAY_NAMESPACE, f"{original_run_id}\x00{deployment or ''}"))


def request_topic_of(names: TopicNames, result: RunResult) -> str:
    """The topic a finished run's request was read from; a pipeline stage is refused."""
    ctx = result.pipeline
    if ctx is not None and ctx.root_run_id != result.run_id:
        raise BadInputError(
            f"run {result.run_id} is stage {ctx.stage} of pipeline {ctx.pipeline!r}: "
            f"replay the pipeline's run {ctx.root_run_id} instead"
        )
    return names.request(result.agent)


async def find_request(bootstrap: str, topic: str, result: RunResult, *, timeout: float = 60.0) -> RunRequest | None:
    """The request of `result`'s run, read from `topic` from shortly before the run started."""
    since = result.started_at - _REQUEST_SLACK
    async for record in read_topic(bootstrap, topic, since=since, timeout=timeout):
        if record.value is None or result.run_id.encode() not in record.value:
            continue  # cheap test first: most records are other runs
        try:
            request = RunRequest.model_validate_json(record.value)
        except ValidationError:
            continue
        if request.run_id == result.run_id:
            return request
    return None


async def read_topic(
    bootstrap: str, topic: str, *, since: datetime | None = None, timeout: float = 60.0
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from `since` (else the beginning) to the end offsets of
    the moment it is called, partition by partition, with no consumer group."""
    tps = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await start_client(consumer.start, consumer.stop, bootstrap)
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await _start_offsets(consumer, tps, since)
        todo = {tp for tp in tps if starts[tp] < ends[tp]}
        for tp in todo:
            consumer.seek(tp, starts[tp])
        async with asyncio.timeout(timeout):
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        if record.offset < ends[tp]:
                            yield record
                    if records and records[-1].offset + 1 >= ends[tp]:
                        todo.discard(tp)
                for tp in list(todo):
                    if await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)
    finally:
        await consumer.stop()


async def _start_offsets(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], since: datetime | None
) -> dict[TopicPartition, int]:
    begins = await consumer.beginning_offsets(list(tps))
    if since is None:
        return dict(begins)
    ends = await consumer.end_offsets(list(tps))
    stamp = int(since.astimezone(UTC).timestamp() * 1000)
    found = await consumer.offsets_for_times(dict.fromkeys(tps, stamp))
    return {tp: (hit.offset if (hit := found.get(tp)) is not None else ends[tp]) for tp in tps}


@dataclass(frozen=True)
class Entry:
    """One thing `ferry dlq` lists: a dead letter or a failed run, where it is kept."""

    topic: str
    partition: int
    offset: int
    at: datetime
    agent: str | None
    run_id: str | None
    category: str
    reason: str
    letter: DeadLetter | None = None
    failed: FailedRun | None = None

    @property
    def ref(self) -> str:
        """How `ferry dlq show` names it: the run id, else where the record is."""
        return self.run_id or f"{self.topic}:{self.partition}:{self.offset}"

    def replayable(self) -> RunRequest | str:
        """The request to run again, or why there is none."""
        if self.failed is not None:
            return self.failed.request
        assert self.letter is not None
        value = self.letter.original_value()
        if value is None:
            return "a tombstone: nothing to run"
        try:
            request = RunRequest.model_validate_json(value)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
            return f"still not a run request ({first.get('msg', '')}): fix the producer and send it again"
        if self.agent is not None and request.agent != self.agent:
            return f"its agent {request.agent!r} is not the topic's ({self.agent!r})"
        if request.pipeline is not None:
            return "a pipeline stage record: replay the pipeline's run instead"
        return request

    def as_json(self) -> dict[str, Any]:
        body = (self.failed or self.letter).model_dump(mode="json")  # type: ignore[union-attr]
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "entry": body}


def agent_of_request_topic(names: TopicNames, topic: str) -> str | None:
    parts = names.unprefixed(topic).split(".")
    if len(parts) == 3 and parts[0] == "agent" and parts[2] == "requests":
        return parts[1]
    return None


async def dead_letters(bootstrap: str, names: TopicNames, *, since: datetime | None) -> list[Entry]:
    entries: list[Entry] = []
    async for record in read_topic(bootstrap, names.dlq, since=since):
        if record.value is None:
            continue
        try:
            letter = DeadLetter.model_validate_json(record.value)
        except ValidationError:
            continue
        entries.append(
            Entry(
                topic=names.dlq,
                partition=record.partition,
                offset=record.offset,
                at=letter.received_at,
                agent=agent_of_request_topic(names, letter.topic),
                run_id=letter.run_id,
                category=letter.category.value,
                reason=letter.reason,
                letter=letter,
            )
        )
    return entries


async def failed_runs(bootstrap: str, names: TopicNames, agent: str, *, since: datetime | None) -> list[Entry]:
    entries: list[Entry] = []
    topic = failed_topic(names, agent)
    async for record in read_topic(bootstrap, topic, since=since):
        if record.value is None:
            continue
        try:
            failed = FailedRun.model_validate_json(record.value)
        except ValidationError:
            continue
        entries.append(
            Entry(
                topic=topic,
                partition=record.partition,
                offset=record.offset,
                at=failed.failed_at,
                agent=failed.agent,
                run_id=failed.run_id,
                category=failed.category.value,
                reason=failed.message,
                failed=failed,
            )
        )
    return entries
