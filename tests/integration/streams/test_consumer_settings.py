"""Ferry's patches of faust's aiokafka consumer take effect on the real consumer.

faust builds its consumer with `fetch_max_wait_ms=1500` and the round-robin assignor,
neither configurable; `faust_app.py` sets both through private attributes, makes the
wait a long poll while a fetch covers every partition (app/kafka/long_poll.py), and runs
the consumer on the worker's own event loop instead of faust's consumer thread. A faust or
aiokafka upgrade that renames them would drop them silently: hops slow down by up to
1.5 s (or by a thread hop per fetch) and concurrency caps stop holding across workers.
This test builds a worker and looks where each setting is used: in the fetch requests,
the loop that fetches, the protocol the broker says the consumer group runs, and faust's
livelock check (each of its per-partition yields woke an idle worker).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from app.devstack.llm_sim import LLMSimulator
from app.kafka.long_poll import AdaptiveWait
from app.streams.assignor import CoPartitionedAssignor
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

FETCH_WAIT_MS = 37  # neither aiokafka's default (500) nor faust's (1500)
IDLE_WAIT_MS = 777


async def test_the_real_consumer_uses_ferrys_fetch_wait_assignor_and_livelock_check(
    tmp_path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    worker = make_worker(project, simulator.base_url, fetch_max_wait_ms=FETCH_WAIT_MS, idle_fetch_wait_ms=IDLE_WAIT_MS)
    await worker.start()
    await worker.wait_assigned()
    assert worker.app is not None

    consumer = worker.app.consumer._thread._ensure_consumer()  # the aiokafka consumer faust built
    assert isinstance(consumer, AIOKafkaConsumer)
    # Fetched on the worker's own loop: faust's consumer thread would run a loop of its own.
    assert consumer._fetcher._fetch_task.get_loop() is asyncio.get_running_loop()
    assert worker.app.consumer._thread._thread is None  # no thread was started
    # What each FetchRequest carries as its max wait: planned per fetch, idle here (nothing sent).
    plan = consumer._fetcher._get_actions_per_node
    assert isinstance(plan, AdaptiveWait)
    assert (plan.idle_wait_ms, plan.busy_wait_ms) == (IDLE_WAIT_MS, FETCH_WAIT_MS)
    await wait_for(lambda: consumer._fetcher._fetch_max_wait_ms == IDLE_WAIT_MS, 10, what="an idle fetch")
    assert consumer._coordinator._assignors == (worker.app.ferry_assignor,)  # the worker's own instance
    assert isinstance(worker.app.ferry_assignor, CoPartitionedAssignor)

    # faust's livelock check looks at every assigned partition without yielding per partition
    # (its own awaits a task, a timer and a cancellation before each).
    faust_consumer = worker.app.consumer
    checked: list[object] = []
    faust_consumer.verify_event_path = lambda now, tp: checked.append(tp)
    check = faust_consumer.verify_all_partitions_active()
    try:
        check.send(None)
    except StopIteration:
        pass
    else:
        check.close()
        raise AssertionError("the livelock check yielded to the loop")
    assert set(checked) == set(faust_consumer.assignment()) and checked

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([worker.settings.app_id])
    finally:
        await admin.close()
    [group] = response.groups
    error_code, group_id, state, protocol_type, protocol = group[:5]
    assert (error_code, group_id, state, protocol_type) == (0, worker.settings.app_id, "Stable", "consumer")
    assert protocol == CoPartitionedAssignor.name  # the group's assignment is Ferry's
