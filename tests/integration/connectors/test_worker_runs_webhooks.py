"""`ferry worker` runs the connectors beside its agents: it delivers its results to callback
URLs itself (`--no-webhooks` leaves that to `ferry connectors run`) and turns records of
the project's inbound topics into runs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from app.connectors.webhook import verify
from app.contracts import RunRequest
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.connectors.conftest import SECRET, Receiver, child_env, ferry_command
from tests.integration.kafka_helpers import create_topics, produce, unique, wait_for
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration


async def _start_worker(
    project_dir: Path, bootstrap: str, prefix: str, app_id: str, sim_url: str, *extra: str
) -> tuple[asyncio.subprocess.Process, list[str]]:
    process = await asyncio.create_subprocess_exec(
        *ferry_command(
            "worker", "--project", str(project_dir), "--broker", bootstrap, "--topic-prefix", prefix,
            "--app-id", app_id, "--no-history", "--no-metrics", *extra,
        ),
        env=child_env(FERRY_LLM_BASE_URL=sim_url, FERRY_HOME=str(project_dir / ".home")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    while not any("consuming" in line for line in lines):
        line = (await asyncio.wait_for(process.stderr.readline(), 120)).decode()
        assert line, f"worker exited before consuming: {''.join(lines)}"
        lines.append(line)
    return process, lines


async def _stop(process: asyncio.subprocess.Process, lines: list[str]) -> str:
    """Stop the worker; its whole stderr, start to end."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    rest = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
    assert await asyncio.wait_for(process.wait(), 60) == 0
    return "".join(lines) + rest


async def test_a_worker_delivers_its_results_to_callback_urls(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    simulator: LLMSimulator,
    receiver: Receiver,
    secret: str,  # FERRY_WEBHOOK_SECRET in the worker's environment
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()}, {"webhooks": {"allow_private": ["127.0.0.1/32"]}})
    process, lines = await _start_worker(tmp_path, kafka_bootstrap, prefix, app_id, simulator.base_url)
    try:
        request = RunRequest.new("echo", {"message": "call me back"}, callback_url=receiver.url)
        async with Submitter(kafka_bootstrap, project, TopicNames(prefix)) as submitter:
            await submitter.submit(request)
        await wait_for(lambda: len(receiver.accepted()) == 1, 60, what="the run's result at its callback URL")
    finally:
        log = await _stop(process, lines)
    assert f"webhooks: delivering {prefix}runs.results in group {app_id}.webhooks" in log
    [got] = receiver.requests
    assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)
    assert json.loads(got.body)["run_id"] == request.run_id


async def test_no_webhooks_leaves_delivery_to_the_connector(
    tmp_path: Path, kafka_bootstrap: str, prefix: str, app_id: str, simulator: LLMSimulator
) -> None:
    write_project(tmp_path, {"echo": llm_agent()})
    process, lines = await _start_worker(tmp_path, kafka_bootstrap, prefix, app_id, simulator.base_url, "--no-webhooks")
    log = await _stop(process, lines)
    assert "consuming" in log and "webhooks:" not in log


async def test_a_record_on_an_inbound_topic_runs_its_agent_and_its_result_reaches_the_webhook(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    simulator: LLMSimulator,
    receiver: Receiver,
    secret: str,  # FERRY_WEBHOOK_SECRET in the worker's environment
) -> None:
    orders = unique("shop.orders")
    await create_topics(kafka_bootstrap, [orders], partitions=2)
    (tmp_path / "connectors").mkdir()
    inbound = {"type": "inbound", "name": "orders", "topic": orders, "agent": "echo", "tenant": "shop"}
    (tmp_path / "connectors" / "orders.yaml").write_text(yaml.safe_dump(inbound))
    hook = {
        "type": "webhook",
        "name": "orders-done",
        "url": receiver.url,
        "agents": ["echo"],
        "secret_env": "FERRY_WEBHOOK_SECRET",
    }
    (tmp_path / "connectors" / "orders-done.yaml").write_text(yaml.safe_dump(hook))
    write_project(tmp_path, {"echo": llm_agent()}, {"webhooks": {"allow_private": ["127.0.0.1/32"]}})
    process, lines = await _start_worker(tmp_path, kafka_bootstrap, prefix, app_id, simulator.base_url)
    try:
        async with ResultWatcher(kafka_bootstrap, TopicNames(prefix)) as watcher:
            await produce(kafka_bootstrap, orders, [(b"order-1", b'{"order": 1}')])
            async with asyncio.timeout(60):  # the inbound record's run result
                while not any(r.agent == "echo" and r.tenant == "shop" for r in watcher.results.values()):
                    await watcher.poll()
        [result] = watcher.results.values()
        assert result.status == "completed" and result.trigger.source == "kafka"
        await wait_for(lambda: len(receiver.accepted()) == 1, 60, what="the inbound run's result at the webhook")
    finally:
        log = await _stop(process, lines)
    assert f"inbound: records of {orders} run echo" in log
    [got] = receiver.requests
    assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)
    delivered = json.loads(got.body)
    assert (delivered["run_id"], delivered["status"]) == (result.run_id, "completed")
