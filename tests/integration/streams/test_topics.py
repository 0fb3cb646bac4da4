"""Topics are created idempotently; a topic that contradicts its spec is reported, not ignored."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.streams import TopicConflictError, TopicNames, apply_topics, plan_topics
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


async def test_a_worker_refuses_to_start_on_a_conflicting_topic(
    tmp_path, kafka_bootstrap: str, names: TopicNames, make_worker: WorkerFactory
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # 6 partitions for a cap of 2: four partitions would have no concurrency share
        await admin.create_topics([NewTopic(names.request("echo"), 6, 1)])
    finally:
        await admin.close()
    worker = make_worker(project, "http://127.0.0.1:9/v1")
    try:
        await worker.start()
    except TopicConflictError as exc:
        assert "max_concurrent_runs" in str(exc)
    else:
        raise AssertionError("the worker started on a topic that breaks its concurrency cap")
