"""`Worker`: a project's agents as Kafka stream processors, in-process or as `ferry worker`.

    async with Worker(project, StreamSettings(bootstrap=...)) as worker:
        await worker.wait_assigned()
        ...

`start` brings the parts up in one order, each needing the ones before it, on one exit
stack: a part that fails to start unwinds exactly the parts started before it (no
producer, consumer, task or temp dir is left behind), and `stop` unwinds the same
stack, so stop is start in reverse:

    1. topics applied and checked     (the broker is reached here first: an unreachable
                                       one is `ServiceUnreachableError`, a conflicting
                                       topic `TopicConflictError`)
    2. metrics endpoint               (when given: `/metrics` listening; a taken port is a
                                       `ConfigError` before anything else holds a resource)
    3. outbox                         (producer: results, next stages, DLQ, spans)
    4. result index                   (caught up with `runs.results`: redelivery checks),
                                       then the cancellations feed (`runs.cancellations`
                                       read to its end: a cancel before a restart holds)
    5. history projector              (when given: store opened and migrated, its consumer
                                       started; an unreachable database stops the start
                                       here, before any run), then the other services
                                       given (the webhook connector), in their order
    6. engine                         (model clients, litellm only when a model needs it,
                                       tools' thread pool); with spend
                                       limits, the spend ledger caught up with the
                                       period's results and its guard before every run;
                                       then the deployments (`ferry.deployments` read to
                                       its end, the active version loaded: its caps are in
                                       force before the first run, docs/deployments.md)
    7. processor and one lane per agent
    8. faust app                      (consumer group; records flow from here on)
    9. drain on stop                  (runs get `drain_seconds`, acked offsets committed)

So on stop the history projector stops after the last runs drained and the app left
its group, and `/metrics` answers until everything else has stopped.

On stop, queued runs are dropped unacked (Kafka delivers them again), running ones get
`drain_seconds` to finish, then are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import TopicPartition

from app.engine import Engine, EngineSettings
from app.observability.history.projector import HistoryProjector
from app.observability.metrics import MetricsEndpoint, MetricsServer, WorkerMetrics
from app.observability.run_observer import RunObserver
from app.observability.spend import SpendControl
from app.project.project import Project
from app.streams.agent_trigger import KafkaAgentTrigger
from app.streams.assignor import CoPartitionedAssignor
from app.streams.bindings import Binding, bindings_for, plan_for_bindings
from app.streams.cancellations import CancellationFeed
from app.streams.checkpoints import CheckpointStore
from app.streams.faust_app import FaustRecord, FerryApp, build_app
from app.streams.keys import on_conflict
from app.streams.lane_core import LaneCore
from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from app.streams.processor import Job, Processor, Runner
from app.streams.ratelimit import ModelRateLimiter, RateLimitedLLM
from app.streams.replies import ReplyingRunner, ReplyPublisher
from app.streams.result_index import ResultIndex
from app.streams.settings import StreamSettings
from app.streams.topic_admin import ApplyReport, TopicConflictError, apply_topics
from app.streams.topic_plan import agent_partitions, internal_replication

if TYPE_CHECKING:  # app.deploy reads its topic with this package's Kafka helpers: imported at start
    from app.deploy.versions import Loaded, VersionedRunner

log = logging.getLogger(__name__)


class Service(Protocol):
    """A long-lived part run beside the agents (the webhook connector): its own Kafka
    clients and consumer group, so the worker only starts it and stops it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Worker:
    def __init__(
        self,
        project: Project,
        settings: StreamSettings,
        *,
        engine_settings: EngineSettings | None = None,
        runner: Runner | None = None,
        history: HistoryProjector | None = None,
        metrics: MetricsEndpoint | None = None,
        services: Sequence[Service] = (),
        follow_deployments: bool = True,
    ) -> None:
        """`history`: a projector (not started) run beside the agents; `metrics`: where to
        serve `/metrics` (None: no metrics are kept at all); `services`: other parts (not
        started) run beside the agents, started in order after the projector;
        `follow_deployments`: run the active deployment of `ferry.deployments` (when there
        is one) instead of `project`'s files, and follow its changes (not with `runner`)."""
        self.project = project
        self.serving = project  # the project whose caps and keys are in force: the active deployment's
        self.versions: VersionedRunner | None = None
        self._follow_deployments = follow_deployments and runner is None
        self._cores: dict[str, LaneCore[Job]] = {}
        self.assignor = CoPartitionedAssignor(self.caps)
        self.settings = settings
        self.names = TopicNames(settings.topic_prefix)
        self.bindings: list[Binding] = bindings_for(project, self.names, settings.agents)
        self._engine_settings = engine_settings
        self._runner = runner
        self.topic_report: ApplyReport | None = None
        # Built here, started in `start`: neither holds a connection before then.
        internal = internal_replication(project, self.names, settings.replication)
        self.outbox = Outbox(settings.bootstrap, self.names, replication=internal)
        self.replies = ReplyPublisher(settings.bootstrap)  # live callers' answers (chat)
        self.index = ResultIndex(settings.bootstrap, self.names.results, capacity=settings.result_index_size)
        self.cancellations = CancellationFeed(settings.bootstrap, self.names.cancellations, on_cancel=self._cancel)
        self.checkpoints = CheckpointStore(settings.bootstrap, self.names, self.outbox, replication=internal)
        self.processor: Processor | None = None
        self.app: FerryApp | None = None
        self.datadir: str | None = None
        self.rate_limiter = ModelRateLimiter.from_config(project.config, share=settings.rate_share)
        self.history = history
        self.services = tuple(services)
        # Spend limits or alerts in ferry.yaml (else None): every worker's spend guards each run.
        self.spend = SpendControl.for_project(project, settings.bootstrap, self.names, app_id=settings.app_id)
        self.metrics = WorkerMetrics(self) if metrics is not None else None
        self.metrics_server = MetricsServer(self.metrics.registry, metrics) if self.metrics and metrics else None
        self._running: contextlib.AsyncExitStack | None = None
        self._assigned = asyncio.Event()
        self._ready = asyncio.Event()

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
        """Start every part in order; if one fails, stop those already started and raise."""
        if self._running is not None:
            return
        async with contextlib.AsyncExitStack() as stack:
            # 1. Topics: created if missing, checked if present; the broker is reached here first.
            if self.settings.apply_topics:
                plan = plan_for_bindings(self.project, self.names, self.bindings, self.settings.replication)
                self.topic_report = await apply_topics(self.settings.bootstrap, plan)
                if self.topic_report.conflicts:
                    raise TopicConflictError(self.topic_report.conflicts)
            # 2. Metrics endpoint: a port taken fails the start before anything holds a connection.
            if self.metrics_server is not None:
                await self.metrics_server.start()
                stack.push_async_callback(self.metrics_server.stop)
            # 3. Outbox: every write of the worker goes through its producer.
            await self.outbox.start()
            stack.push_async_callback(self.outbox.stop)
            await self.replies.start()
            stack.push_async_callback(self.replies.stop)
            # 4. Result index: caught up with runs.results before any record is judged.
            await self.index.start()
            stack.push_async_callback(self.index.stop)
            await self.cancellations.start()
            stack.push_async_callback(self.cancellations.stop)
            await self.checkpoints.start()  # runs' step checkpoints, read to the end (app/streams/checkpoints.py)
            stack.push_async_callback(self.checkpoints.stop)
            # 5. History projector: a database it cannot reach or migrate fails the start here.
            if self.history is not None:
                await self.history.start()
                stack.push_async_callback(self.history.stop)
            for service in self.services:
                await service.start()
                stack.push_async_callback(service.stop)
            # 6. Engine (or the runner the caller brought, which the caller closes).
            runner = self._runner
            if runner is None:
                engine = self._make_engine(self.project)
                stack.push_async_callback(engine.aclose)
                runner = engine
                if self._follow_deployments:
                    from app.deploy.follower import DeploymentFollower
                    from app.deploy.versions import VersionedRunner

                    self.versions = VersionedRunner(engine, self._make_engine, on_switch=self._switch)
                    stack.push_async_callback(self.versions.aclose)
                    follower = DeploymentFollower(
                        self.settings.bootstrap,
                        self.names,
                        self.versions.follow,
                        replication=self.settings.replication,
                        fetch_max_wait_ms=500,  # one partition: a record ends the long-poll at once
                    )
                    await follower.start()
                    stack.push_async_callback(follower.stop)
                    runner = self.versions
            # Cancelling a running run is the engine's (its result keeps the usage so far).
            cancel_running = getattr(runner, "cancel", None)
            if self.spend is not None:  # a restarted worker knows the period's spend before any run
                await self.spend.start()
                stack.push_async_callback(self.spend.stop)
                runner = self.spend.guard(runner)
            runner = ReplyingRunner(runner, self.replies)  # a chat message's answer streams to its socket
            # 7. Processor and lanes: nothing runs until partitions are assigned.
            self.processor = self._make_processor(runner, cancel_running)  # kept after stop: counts stay readable
            stack.callback(self._not_assigned)
            # 8. faust app: joins the consumer group; its state lives in a temp dir of its own.
            self.datadir = tempfile.mkdtemp(prefix="ferry-worker-")
            stack.callback(self._remove_datadir)
            self.app = build_app(self.settings, self.bindings, self.datadir, self._handle)
            self.app.ferry_assignor = self.assignor  # type: ignore[attr-defined]
            self.app.on_partitions_assigned.connect(self._on_assigned)
            self.app.on_partitions_revoked.connect(self._on_revoked)
            stack.push_async_callback(self._stop_app)  # before start: a half-started app is stopped too
            await self.app.start()
            # 9. On stop, first of all: let running runs finish and commit what they acked.
            stack.push_async_callback(self._drain_and_commit)
            self._running = stack.pop_all()

    async def stop(self) -> None:
        """Drain, then stop the parts in reverse start order. Safe to call at any time, twice."""
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()

    def _make_engine(self, project: Project) -> Engine:
        # The engine imports litellm now, at start, only when one of the project's models
        # needs it (not inside the first run, while the consumer loop waits on the thread).
        # Every LLM attempt of every run passes the worker's shared model rate limits.
        # One engine per deployment version: timeouts, retries, models and tools are the version's.
        return Engine(
            project,
            settings=self._engine_settings or EngineSettings(),
            llm_middleware=lambda client: RateLimitedLLM(client, self.rate_limiter),
            # trigger_agent from a run: the child is a run on its agent's request topic.
            agent_trigger=KafkaAgentTrigger(project, self.outbox, self.settings.bootstrap, self.names),
        )

    def _cancel(self, run_id: str) -> None:
        if self.processor is not None:
            self.processor.cancel(run_id)

    def _make_processor(self, runner: Runner, cancel_running: Callable[[str], bool] | None = None) -> Processor:
        processor = Processor(
            self.serving,
            runner,
            self.outbox,
            self.index,
            max_request_bytes=self.settings.max_request_bytes,
            emit_traces=self.settings.emit_traces,
            observer=RunObserver(self.metrics),
            cancelled=self.cancellations,
            cancel_running=cancel_running,
            checkpoints=self.checkpoints,
        )
        for agent in sorted({b.agent for b in self.bindings if not b.route}):
            spec = self.serving.agents.get(agent) or self.project.agents[agent]
            core: LaneCore[Job] = LaneCore(
                cap=spec.max_concurrent_runs,
                partitions=agent_partitions(self.project, self.names, agent),
                on_conflict=on_conflict(spec),  # type: ignore[arg-type]
                window=self.settings.read_ahead,
                window_bytes=self.settings.read_ahead_bytes,
            )
            self._cores[agent] = core
            processor.open_lane(agent, core, [b.topic for b in self.bindings if b.agent == agent and not b.route])
        return processor

    def caps(self) -> dict[str, int]:
        """Agent → `max_concurrent_runs` in force here: announced to the group when joining."""
        return {agent: core.cap for agent, core in self._cores.items()}

    def _switch(self, loaded: Loaded | None) -> None:
        """A new active deployment is in force: its caps, keys and pipelines from the next run on."""
        project = loaded.project if loaded is not None else self.project
        missing = sorted(a for a in self._cores if a not in project.agents)
        if missing:
            version = loaded.version if loaded is not None else None
            log.error("deployment %s lacks agents this worker runs (%s): caps unchanged", version, missing)
            return
        self.serving = project
        if self.processor is not None:
            self.processor.project = project
        before = self.caps()
        for agent, core in self._cores.items():
            spec = project.agents[agent]
            core.reconfigure(cap=spec.max_concurrent_runs, on_conflict=on_conflict(spec))  # type: ignore[arg-type]
        self._rejoin_if_shares_need_it(before)

    def _rejoin_if_shares_need_it(self, before: dict[str, int] | None = None) -> None:
        """Ask the group to rebalance when the cap no longer fits the holders: a share of 0 here
        (cap below the holders), or members left out that a raised cap has room for (any
        member that raised it asks: the holders may still run the old cap)."""
        for agent, core in self._cores.items():
            holders = self.assignor.holders.get(agent, core.holders)
            subscribers = self.assignor.subscribers.get(agent, holders)
            too_few = bool(core.assigned) and core.cap < core.holders
            raised = before is not None and before.get(agent, core.cap) < core.cap
            if too_few or (raised and holders < min(subscribers, core.cap)):
                log.info("agent %s: cap %d, %d holders: asking the group to rebalance", agent, core.cap, core.holders)
                self._request_rejoin()
                return

    def _request_rejoin(self) -> None:
        app: Any = self.app
        try:
            thread: Any = app.consumer._thread if app is not None else None  # faust's consumer thread
            consumer = thread._ensure_consumer() if thread is not None else None
            if consumer is not None:
                thread.thread_loop.call_soon_threadsafe(consumer._coordinator.request_rejoin)
        except (AttributeError, RuntimeError, AssertionError):
            log.warning("could not ask the group to rebalance; the shares change at the next rebalance")

    def lane_loads(self) -> dict[str, tuple[int, int]]:
        """Agent → (runs running, runs queued): the in-flight and queued gauges."""
        return self.processor.loads() if self.processor is not None else {}

    def records_handled(self) -> int:
        """Everything the processor has counted (results, dead letters, skips, replayed
        steps…): it moves whenever records were handled, which is all its reader needs."""
        return sum(self.processor.counts.values()) if self.processor is not None else 0

    def busy(self) -> bool:
        """Whether any run is running or queued here now."""
        return any(running or queued for running, queued in self.lane_loads().values())

    def consumer_lag(self) -> dict[str, int]:
        """Consumed topic → records after the group's committed offset, over the partitions
        this worker holds (read at a scrape, from faust's consumer)."""
        app = self.app
        if app is None or self._running is None:
            return {}
        return consumer_lag(app, frozenset(self.topics))

    def _not_assigned(self) -> None:
        self._ready.clear()
        self._assigned.clear()

    def _remove_datadir(self) -> None:
        if self.datadir is not None:
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir = None

    async def _stop_app(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            await app.stop()

    async def _drain_and_commit(self) -> None:
        if self.processor is not None:
            await self.processor.drain(self.settings.drain_seconds)
        if self.app is not None:
            try:
                await self.app.commit(None)  # type: ignore[arg-type]
            except Exception:
                log.warning("final commit failed", exc_info=True)

    async def wait_assigned(self, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            await self._assigned.wait()
            await self._ready.wait()

    async def _handle(self, record: FaustRecord, binding: Binding) -> None:
        await self._ready.wait()  # redelivery checks need an index that has caught up
        assert self.processor is not None
        await self.processor.handle(record, binding)

    # faust's signals call a receiver as (sender, partitions, signal=...); mypy accepts only
    # (*args, **kwargs) for mode's handler type.
    async def _on_assigned(self, *args: Any, **_: Any) -> None:
        assigned: set[TopicPartition] = args[1]
        await self.index.catch_up()
        await self.checkpoints.catch_up()  # a step written by a worker that died just before is seen
        assert self.processor is not None
        groups = self.assignor.groups  # set in the consumer's thread just before this signal
        for agent, core in self._cores.items():
            core.set_group(*groups.get(agent, (0, 1)))
        self.processor.assign((tp.topic, tp.partition) for tp in assigned)
        self._rejoin_if_shares_need_it()
        self._ready.set()
        if assigned:
            self._assigned.set()
        log.info("worker %s: assigned %d partitions", self.settings.app_id, len(assigned))

    async def _on_revoked(self, *args: Any, **_: Any) -> None:
        revoked: set[TopicPartition] = args[1]
        self._ready.clear()
        assert self.processor is not None
        await self.processor.release([(tp.topic, tp.partition) for tp in revoked], self.settings.drain_seconds)


def consumer_lag(app: FerryApp, topics: frozenset[str]) -> dict[str, int]:
    """Log end offset − committed offset per partition held, summed per topic. Before the
    group's first commit on a partition, the offset read so far stands in for it."""
    lag: dict[str, int] = dict.fromkeys(sorted(topics), 0)
    consumer: Any = app.consumer
    try:
        assignment = consumer.assignment()
        for tp in assignment:
            if tp.topic not in lag:
                continue
            end = consumer.highwater(tp)
            done = consumer._committed_offset.get(tp)  # faust's own record of what it committed
            if done is None:
                read = consumer._read_offset.get(tp)
                done = read + 1 if read is not None else None
            if end is not None and done is not None:
                lag[tp.topic] += max(0, int(end) - int(done))
    except (AssertionError, RuntimeError, KeyError, AttributeError):
        # A rebalance moved partitions while we read (the consumer runs in its own thread),
        # or the consumer is not up yet: this scrape shows what was read before.
        pass
    return lag
