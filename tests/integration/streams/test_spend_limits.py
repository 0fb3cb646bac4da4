"""Spend limits across workers: a daily agent limit stops new runs at the limit with two workers
running, its alerts reach `ferry.alerts` once each, and a worker (re)started mid-period knows the
period's spend from `runs.results`."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.contracts import RunRequest, RunResult, RunStatus, SpendAlert, Usage
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import LLMSimulator
from app.project.project import Project
from app.streams import ResultWatcher, Submitter, TopicNames, Worker
from app.streams.connect import topic_partitions
from app.streams.topic_plan import agent_partitions
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration

CAP = 2  # runs of the agent in flight across all workers
PRICE = 0.01  # USD per token in and out: a run costs some cents
LIMIT = 0.5


def _project(root: Path, **config: Any) -> Project:
    return write_project(
        root,
        {"spender": llm_agent(max_concurrent_runs=CAP), "other": llm_agent()},
        config={
            "models": {"openai/sim-model": {"input_cost_per_token": PRICE, "output_cost_per_token": PRICE}},
            "spend_limits": [{"scope": "agent", "name": "spender", "period": "day", "limit_usd": LIMIT}],
            **config,
        },
    )


async def _alerts(bootstrap: str, topic: str) -> list[SpendAlert]:
    """Every alert on the topic, read to its end."""
    parts = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        alerts: list[SpendAlert] = []
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    alerts.append(SpendAlert.model_validate_json(record.value))
        return alerts
    finally:
        await consumer.stop()


async def _settled(workers: list[Worker], agent: str) -> None:
    """Both workers hold some of the agent's partitions and together all of them (the spec's
    count: a cap is a share of the assignment, not a partition count)."""
    partitions = agent_partitions(workers[0].project, workers[0].names, agent)

    def settled() -> bool:
        held = [w.processor.assigned(agent) if w.processor else frozenset() for w in workers]
        return all(held) and sorted(p for h in held for p in h) == list(range(partitions))

    await wait_for(settled, 60, what="both workers to share the agent's partitions")


def _ids(alerts: list[SpendAlert]) -> list[str]:
    return sorted(alert.alert_id for alert in alerts)


async def test_a_daily_agent_limit_stops_new_runs_across_two_workers_and_alerts_once(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = _project(tmp_path)
    today = datetime.now(UTC).date().isoformat()
    async with LLMSimulator([], latency_ms=150, record_requests=False) as sim:
        workers = [make_worker(project, sim.base_url), make_worker(project, sim.base_url)]
        for worker in workers:
            await worker.start()
        await _settled(workers, "spender")
        requests = [RunRequest.new("spender", {"message": "spend"}) for _ in range(30)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=120)
            assert len(results) == len(requests)

            completed = [r for r in results.values() if r.status is RunStatus.COMPLETED]
            refused = [r for r in results.values() if r.status is RunStatus.FAILED]
            assert len(completed) + len(refused) == len(requests)
            cost = completed[0].usage.cost_usd
            assert cost is not None and cost > 0
            assert {r.usage.cost_usd for r in completed} == {cost}  # the same input costs the same
            reaching = math.ceil(LIMIT / cost - 1e-9)  # runs whose spend reaches the limit
            assert reaching < len(requests)  # the test sends enough to pass it
            # Runs stopped AT the limit: not before it, and past it only by the runs in flight.
            assert reaching <= len(completed) <= reaching + sim.peak_in_flight
            assert sim.peak_in_flight <= CAP
            assert sim.calls_total == len(completed)  # a refused run made no LLM call
            said = re.compile(
                rf"spend limit reached: agent 'spender' spent \$0\.\d+ of its \$0\.50 daily limit \({today} UTC\); "
                r"new runs are refused until the day turns \(UTC\)"
            )
            for result in refused:
                assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
                assert said.fullmatch(result.error.message), result.error.message
                assert result.usage.llm_calls == 0
            assert all(w.processor is not None and w.processor.counts["results"] > 0 for w in workers)

            # Another agent is not in the limit's scope.
            other = RunRequest.new("other", {"message": "hi"})
            await submitter.send(other)
            done = await watcher.wait_for([other.run_id], timeout=60)
            assert done[other.run_id].status is RunStatus.COMPLETED

        # The 50, 80 and 100 % alerts, each once, sent by one of the two workers.
        wanted = [f"agent=spender:day:{today}:{pct}%" for pct in (50, 80, 100)]

        async def all_sent() -> bool:
            return set(wanted) <= set(_ids(await _alerts(kafka_bootstrap, names.alerts)))

        await wait_for(all_sent, 60, interval=0.5, what="the 50/80/100 % alerts on ferry.alerts")
        for worker in workers:
            await worker.stop()  # a send in hand is finished before a worker leaves
        alerts = await _alerts(kafka_bootstrap, names.alerts)
        assert _ids(alerts) == sorted(wanted)  # exactly once each, and nothing else
        hundred = next(a for a in alerts if a.threshold_pct == 100)
        assert hundred.limit_usd == LIMIT and hundred.spent_usd >= LIMIT - 1e-9
        assert "new runs are refused until the day turns" in hundred.message
        # Sent by the worker owning the alerts' partition: one, or two when the group moved the
        # partition mid-test (a late join under load); never one alert by both.
        published = [a.alert_id for w in workers if w.spend is not None for a in w.spend.publisher.published]
        assert sorted(published) == sorted(wanted)

        # A worker started again in the same day knows the day's spend before its first run.
        restarted = make_worker(project, sim.base_url)
        await restarted.start()
        assert restarted.spend is not None
        assert restarted.spend.ledger.spent(("agent", "spender"), "day", today) == pytest.approx(len(completed) * cost)
        await restarted.wait_assigned()
        calls = sim.calls_total
        late = RunRequest.new("spender", {"message": "spend"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.send(late)
            result = (await watcher.wait_for([late.run_id], timeout=60))[late.run_id]
        assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
        assert sim.calls_total == calls

        # Its alert sender read the alerts already sent: it sends none of them again.
        publisher = restarted.spend.publisher
        await wait_for(lambda: bool(publisher.owned), 60, what="the restarted worker to own the alerts")
        assert await publisher.judge() == []
        await restarted.stop()
        assert _ids(await _alerts(kafka_bootstrap, names.alerts)) == sorted(wanted)


async def test_spend_produced_by_another_worker_counts_from_the_start_of_the_period(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    """Results on runs.results that no worker of this test produced (another worker, before a
    restart): today's count against today's limit, yesterday's do not."""
    project = _project(tmp_path, spend_alerts={"thresholds": [100], "spike_factor": 0})
    now = datetime.now(UTC)
    bootstrap_worker = make_worker(project, "http://127.0.0.1:9/v1")
    await bootstrap_worker.start()  # creates the topics
    await bootstrap_worker.stop()

    def spent(run_id: str, cost: float, started: datetime) -> bytes:
        return RunResult(
            run_id=run_id, agent="spender", status=RunStatus.COMPLETED, started_at=started, ended_at=started,
            duration_ms=0.0, usage=Usage(cost_usd=cost, llm_calls=1),
        ).model_dump_json().encode()  # fmt: skip

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(names.results, spent("yesterday", 5.0, now - timedelta(days=1)), key=b"yesterday")
        await producer.send_and_wait(names.results, spent("today-1", 0.3, now), key=b"today-1")
        await producer.send_and_wait(names.results, spent("today-2", 0.3, now), key=b"today-2")
        await producer.send_and_wait(names.results, spent("today-2", 0.3, now), key=b"today-2")  # a duplicate
    finally:
        await producer.stop()

    worker = make_worker(project, "http://127.0.0.1:9/v1")  # no LLM: a run that started would fail
    await worker.start()
    assert worker.spend is not None
    today = now.date().isoformat()
    assert worker.spend.ledger.spent(("agent", "spender"), "day", today) == pytest.approx(0.6)
    await worker.wait_assigned()
    request = RunRequest.new("spender", {"message": "x"})
    async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as sub:
        await sub.send(request)
        result = (await watcher.wait_for([request.run_id], timeout=60))[request.run_id]
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert "agent 'spender' spent $0.60 of its $0.50 daily limit" in result.error.message

    async def sent() -> bool:
        return _ids(await _alerts(kafka_bootstrap, names.alerts)) == [f"agent=spender:day:{today}:100%"]

    await wait_for(sent, 60, interval=0.5, what="the 100 % alert")
