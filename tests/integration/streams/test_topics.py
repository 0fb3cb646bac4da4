"""Topics are created idempotently; a topic that contradicts its spec is reported, not ignored."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicConflictError, TopicNames, apply_topics, plan_topics
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project


async def test_apply_creates_then_finds_and_reports_conflicts(
    tmp_path, kafka_bootstrap: str, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=4)})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # someone created runs.results by hand: too few partitions, and not compacted
        await admin.create_topics([NewTopic(names.results, 2, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()
    plan = plan_topics(project, names)

    first = await apply_topics(kafka_bootstrap, plan)
    second = await apply_topics(kafka_bootstrap, plan)

    assert set(first.created) == {t.name for t in plan} - {names.results}
    assert second.created == [] and set(second.existing) == {t.name for t in plan}
    conflicts = {(c.topic, c.setting): c for c in second.conflicts}
    assert set(conflicts) == {(names.results, "partitions"), (names.results, "cleanup.policy")}
    assert conflicts[(names.results, "cleanup.policy")].wanted == "compact"
    assert conflicts[(names.results, "partitions")].actual == "2"


async def test_workers_applying_the_same_new_topics_at_once_find_no_conflict(tmp_path, kafka_bootstrap: str) -> None:
    """The worker whose create loses the race finds topics created a moment ago; it must
    read them once their metadata is in, not as a topic of 0 partitions."""
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    for _ in range(5):
        plan = plan_topics(project, TopicNames(f"t-{uuid.uuid4().hex[:8]}."))
        first, second = await asyncio.gather(apply_topics(kafka_bootstrap, plan), apply_topics(kafka_bootstrap, plan))
        assert first.conflicts == [] and second.conflicts == []
        assert set(first.created) | set(second.created) == {t.name for t in plan}


async def test_a_worker_refuses_to_start_on_a_conflicting_topic(
    tmp_path, kafka_bootstrap: str, names: TopicNames, make_worker: WorkerFactory
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # runs.results made by hand, not compacted: results would be deleted by age
        await admin.create_topics([NewTopic(names.results, 6, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()
    worker = make_worker(project, "http://127.0.0.1:9/v1")
    try:
        await worker.start()
    except TopicConflictError as exc:
        assert "cleanup.policy is delete, spec wants compact" in str(exc)
    else:
        raise AssertionError("the worker started on a results topic that is not compacted")


async def test_an_agent_topic_of_any_partition_count_runs_under_the_agents_cap(
    tmp_path, kafka_bootstrap: str, names: TopicNames, make_worker: WorkerFactory
) -> None:
    """Made by an earlier Ferry with min(spec, cap) partitions, or with more than the cap:
    the cap is shared among the workers holding them, so either way the worker starts."""
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names.request("echo"), 3, 1, topic_configs={"retention.ms": "604800000"})])
    finally:
        await admin.close()
    async with LLMSimulator([], latency_ms=100, record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        assert worker.topic_report is not None and worker.topic_report.conflicts == []
        await worker.wait_assigned()
        requests = [RunRequest.new("echo", {"message": f"m{i}"}) for i in range(12)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED} and len(results) == 12
    assert sim.peak_in_flight == 2
