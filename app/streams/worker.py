"""`Worker`: a project's agents as Kafka stream processors, in-process or as `ferry worker`.

    async with Worker(project, StreamSettings(bootstrap=...)) as worker:
        await worker.wait_assigned()
        ...

Start order (each part needs the one before): topics applied and checked → outbox
(producer) → result index caught up with `runs.results` → engine → lanes → faust app.
Stop is the reverse, after the lanes drain: queued runs are dropped unacked (Kafka
delivers them again), running ones get `drain_seconds` to finish, then are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from types import TracebackType
from typing import Any

from aiokafka import TopicPartition

from app.engine import Engine, EngineSettings
from app.engine.llm import load_litellm
from app.project.project import Project
from app.streams.bindings import Binding, bindings_for, plan_for_bindings
from app.streams.faust_app import FaustRecord, FerryApp, build_app
from app.streams.keys import on_conflict
from app.streams.lane import Lane
from app.streams.lane_core import LaneCore
from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from app.streams.processor import Job, Processor, Runner
from app.streams.ratelimit import ModelRateLimiter, RateLimitedLLM
from app.streams.result_index import ResultIndex
from app.streams.settings import StreamSettings
from app.streams.topic_admin import ApplyReport, TopicConflictError, apply_topics
from app.streams.topic_plan import agent_partitions

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        project: Project,
        settings: StreamSettings,
        *,
        engine_settings: EngineSettings | None = None,
        runner: Runner | None = None,
    ) -> None:
        self.project = project
        self.settings = settings
        self.names = TopicNames(settings.topic_prefix)
        self.bindings: list[Binding] = bindings_for(project, self.names, settings.agents)
        self._engine_settings = engine_settings
        self._runner = runner
        self._engine: Engine | None = None
        self.topic_report: ApplyReport | None = None
        self.outbox = Outbox(settings.bootstrap, self.names)
        self.index = ResultIndex(settings.bootstrap, self.names.results, capacity=settings.result_index_size)
        self.processor: Processor | None = None
        self.app: FerryApp | None = None
        self.rate_limiter = ModelRateLimiter.from_config(project.config, share=settings.rate_share)
        self._datadir = tempfile.mkdtemp(prefix="ferry-worker-")
        self._assigned = asyncio.Event()
        self._ready = asyncio.Event()
        self._started = False

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def topics(self) -> list[str]:
        return [b.topic for b in self.bindings]

    async def start(self) -> None:
        if self.settings.apply_topics:
            plan = plan_for_bindings(self.project, self.names, self.bindings, self.settings.replication)
            self.topic_report = await apply_topics(self.settings.bootstrap, plan)
            if self.topic_report.conflicts:
                raise TopicConflictError(self.topic_report.conflicts)
        await self.outbox.start()
        await self.index.start()
        runner = self._runner or self._make_engine()
        self.processor = Processor(
            self.project,
            runner,
            self.outbox,
            self.index,
            max_request_bytes=self.settings.max_request_bytes,
            emit_traces=self.settings.emit_traces,
        )
        for agent in sorted({b.agent for b in self.bindings if not b.route}):
            spec = self.project.agents[agent]
            core: LaneCore[Job] = LaneCore(
                cap=spec.max_concurrent_runs,
                partitions=agent_partitions(self.project, self.names, agent),
                on_conflict=on_conflict(spec),  # type: ignore[arg-type]
                window=self.settings.read_ahead,
                window_bytes=self.settings.read_ahead_bytes,
            )
            self.processor.lanes[agent] = Lane(agent, core, self.processor.execute)
        self.app = build_app(self.settings, self.bindings, self._datadir, self._handle)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        await self.app.start()
        self._started = True

    def _make_engine(self) -> Engine:
        # litellm's import takes seconds of CPU: pay it now, not inside the first run while
        # the consumer loop waits on the same thread.
        load_litellm()
        # Every LLM attempt of every run passes the worker's shared model rate limits.
        self._engine = Engine(
            self.project,
            settings=self._engine_settings or EngineSettings(),
            llm_middleware=lambda client: RateLimitedLLM(client, self.rate_limiter),
        )
        return self._engine

    async def wait_assigned(self, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            await self._assigned.wait()
            await self._ready.wait()

    async def _handle(self, record: FaustRecord, binding: Binding) -> None:
        await self._ready.wait()  # redelivery checks need an index that has caught up
        assert self.processor is not None
        await self.processor.handle(record, binding)

    def _partitions_by_agent(self, tps: set[TopicPartition]) -> dict[str, set[int]]:
        by_topic: dict[str, str] = {b.topic: b.agent for b in self.bindings if not b.route}
        found: dict[str, set[int]] = {agent: set() for agent in by_topic.values()}
        for tp in tps:
            if tp.topic in by_topic:
                found[by_topic[tp.topic]].add(tp.partition)
        return found

    async def _on_assigned(self, sender: Any, assigned: set[TopicPartition], **_: Any) -> None:
        await self.index.catch_up()
        assert self.processor is not None
        for agent, partitions in self._partitions_by_agent(assigned).items():
            self.processor.lanes[agent].assign(partitions)
        self._ready.set()
        if assigned:
            self._assigned.set()
        log.info("worker %s: assigned %d partitions", self.settings.app_id, len(assigned))

    async def _on_revoked(self, sender: Any, revoked: set[TopicPartition], **_: Any) -> None:
        self._ready.clear()
        assert self.processor is not None
        by_agent = self._partitions_by_agent(revoked)
        await asyncio.gather(
            *(self.processor.lanes[a].release(p, self.settings.drain_seconds) for a, p in by_agent.items() if p)
        )
        # Whatever is still unacked now belongs to the next owner of the partition.
        self.processor.acks.forget((tp.topic, tp.partition) for tp in revoked)

    async def stop(self) -> None:
        if self.processor is not None:
            await asyncio.gather(*(lane.drain(self.settings.drain_seconds) for lane in self.processor.lanes.values()))
        if self.app is not None and self._started:
            try:
                await self.app.commit(None)  # type: ignore[arg-type]
            except Exception:
                log.warning("final commit failed", exc_info=True)
            await self.app.stop()
        await self.index.stop()
        await self.outbox.stop()
        if self._engine is not None:
            await self._engine.aclose()
        shutil.rmtree(self._datadir, ignore_errors=True)
        self._started = False
