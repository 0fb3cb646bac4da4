"""A run submitted with a callback URL reaches that URL, signed, once the worker has run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.connectors.webhook import WebhookConnector, WebhookSettings, delivery_id, destinations_for, verify
from app.contracts import RunRequest
from app.devstack.llm_sim import LLMSimulator
from app.streams import Submitter, TopicNames
from tests.integration.connectors.conftest import SECRET, Receiver
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration


async def test_a_worker_result_is_delivered_to_the_requests_callback_url(
    tmp_path: Path,
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
    receiver: Receiver,
    secret: str,
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()}, {"webhooks": {"allow_private": ["127.0.0.1/32"]}})
    names = TopicNames(prefix)
    await make_worker(project, simulator.base_url).start()  # creates the topics, webhooks.dlq among them
    settings = WebhookSettings(group_id=f"{app_id}.webhooks")
    request = RunRequest.new("echo", {"message": "call me back"}, tenant="acme", callback_url=receiver.url)
    async with WebhookConnector(kafka_bootstrap, names, destinations_for(project, settings), settings):
        async with Submitter(kafka_bootstrap, project, names) as submitter:
            await submitter.submit(request)
        await wait_for(lambda: len(receiver.accepted()) == 1, 60, what="the run's result at its callback URL")
    [got] = receiver.requests
    assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)
    assert got.delivery == delivery_id(request.run_id, f"callback:{receiver.url}")
    envelope = json.loads(got.body)
    assert (envelope["run_id"], envelope["agent"], envelope["tenant"]) == (request.run_id, "echo", "acme")
    assert envelope["status"] == "completed" and envelope["output"] is not None
    assert envelope["usage"]["llm_calls"] == 1
