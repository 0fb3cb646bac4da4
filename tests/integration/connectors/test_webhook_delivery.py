"""The webhook connector against the real broker and a real receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.connectors.webhook import (
    RetryPolicy,
    WebhookConnector,
    WebhookDeadLetter,
    WebhookSettings,
    delivery_id,
    destinations_for,
    verify,
)
from app.project.project import Project
from app.streams import TopicNames
from tests.integration.connectors.conftest import (
    ROOT,
    SECRET,
    Receiver,
    child_env,
    ferry_command,
    free_port,
    produce_results,
    result,
)
from tests.integration.kafka_helpers import collect, wait_for

pytestmark = pytest.mark.integration


def _settings(app_id: str, max_attempts: int) -> WebhookSettings:
    retry = RetryPolicy(max_attempts=max_attempts, base_delay_s=0.05, max_delay_s=0.2)
    return WebhookSettings(group_id=f"{app_id}.webhooks", retry=retry, stop_timeout_s=2)


@pytest.fixture
async def connectors(kafka_bootstrap: str, prefix: str) -> AsyncIterator[list[WebhookConnector]]:
    started: list[WebhookConnector] = []
    yield started
    for connector in started:
        await connector.stop()


async def _start(
    started: list[WebhookConnector], bootstrap: str, prefix: str, project: Project, settings: WebhookSettings
) -> WebhookConnector:
    connector = WebhookConnector(bootstrap, TopicNames(prefix), destinations_for(project, settings), settings)
    await connector.start()
    started.append(connector)
    return connector


async def _dead_letters(bootstrap: str, names: TopicNames, count: int) -> list[WebhookDeadLetter]:
    return [WebhookDeadLetter.model_validate_json(v) for v in await collect(bootstrap, names.webhooks_dlq, count, 60)]


async def test_ferry_connectors_run_delivers_a_signed_result(
    kafka_bootstrap: str, prefix: str, app_id: str, project: Project, receiver: Receiver
) -> None:
    names = TopicNames(prefix)
    await produce_results(
        kafka_bootstrap, names, [result("run-signed", receiver.url), result("run-without-callback", None)]
    )
    process = await asyncio.create_subprocess_exec(
        *ferry_command("connectors", "run", "--project", str(project.root), "--broker", kafka_bootstrap,
                       "--topic-prefix", prefix, "--app-id", app_id),
        cwd=ROOT, env=child_env(FERRY_WEBHOOK_SECRET=SECRET),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_for(lambda: len(receiver.requests) >= 1, 60, what="the delivery to reach the receiver")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    [got] = receiver.requests
    assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)
    assert got.delivery == delivery_id("run-signed", f"callback:{receiver.url}")
    envelope = json.loads(got.body)
    assert envelope["run_id"] == "run-signed" and envelope["status"] == "completed"
    assert envelope["output"] == {"answer": "run-signed"} and envelope["tenant"] == "acme"
    assert {"agent", "error", "usage", "started_at", "ended_at", "deployment", "trigger"} <= envelope.keys()
    assert "callback_url" not in envelope
    assert "Traceback" not in err.decode()


async def test_a_receiver_down_for_a_while_gets_every_delivery_once_back(
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    project: Project,
    receiver: Receiver,
    secret: str,
    connectors: list[WebhookConnector],
) -> None:
    names = TopicNames(prefix)
    run_ids = [f"run-{i}" for i in range(10)]
    receiver.status = 503
    await produce_results(kafka_bootstrap, names, [result(run_id, receiver.url) for run_id in run_ids])
    connector = await _start(connectors, kafka_bootstrap, prefix, project, _settings(app_id, max_attempts=50))
    # Down: every result is tried (and refused) at least twice before the receiver comes back.
    await wait_for(
        lambda: (
            {r.delivery for r in receiver.requests if r.status == 503}
            == {delivery_id(run_id, f"callback:{receiver.url}") for run_id in run_ids}
            and len(receiver.requests) >= 2 * len(run_ids)
        ),
        60,
        what="every result to be attempted while the receiver is down",
    )
    receiver.status = 204
    expected = {delivery_id(run_id, f"callback:{receiver.url}"): run_id for run_id in run_ids}
    await wait_for(
        lambda: {r.delivery for r in receiver.accepted()} == set(expected), 60, what="every result to be delivered"
    )
    for got in receiver.requests:  # retries carry the delivery id of their run, and a valid signature
        assert expected[got.delivery] == json.loads(got.body)["run_id"]
        assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)
    assert connector.stats.dead_lettered == 0
    # Every offset is committed once delivered: a connector of the same group starting now has nothing to do.
    await connector.stop()
    connectors.remove(connector)
    delivered = len(receiver.requests)
    again = await _start(connectors, kafka_bootstrap, prefix, project, _settings(app_id, max_attempts=2))
    await produce_results(kafka_bootstrap, names, [result("run-after-restart", receiver.url)])
    await wait_for(lambda: again.stats.delivered == 1, 60, what="the new result to be delivered")
    assert len(receiver.requests) == delivered + 1
    assert json.loads(receiver.requests[-1].body)["run_id"] == "run-after-restart"


async def test_a_receiver_that_never_recovers_fills_the_dlq_and_replay_delivers_once_back(
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    project: Project,
    secret: str,
    connectors: list[WebhookConnector],
) -> None:
    names = TopicNames(prefix)
    down = Receiver(free_port())  # nothing listens there yet: connection refused
    run_ids = [f"run-{i}" for i in range(5)]
    await produce_results(kafka_bootstrap, names, [result(run_id, down.url) for run_id in run_ids])
    connector = await _start(connectors, kafka_bootstrap, prefix, project, _settings(app_id, max_attempts=3))
    letters = await _dead_letters(kafka_bootstrap, names, len(run_ids))
    assert sorted(letter.run_id for letter in letters) == run_ids
    for letter in letters:
        assert letter.attempts == 3
        assert letter.reason.startswith("network error: ") and letter.reason.endswith("after 3 attempts")
        assert letter.delivery_id == delivery_id(letter.run_id, f"callback:{down.url}")
        assert letter.envelope["run_id"] == letter.run_id
    await wait_for(lambda: connector.stats.dead_lettered == len(run_ids), 30, what="the connector to count them")

    await down.start()
    try:
        replay = ("webhooks", "replay", "--project", str(project.root), "--broker", kafka_bootstrap,
                  "--topic-prefix", prefix, "--app-id", app_id, "--max-attempts", "2", "--retry-base-seconds", "0.05")  # fmt: skip
        first = await _ferry(*replay, "--limit", "2")
        assert first == (0, "replayed 2: 2 delivered, 0 back in the DLQ\n"), first
        rest = await _ferry(*replay)
        assert rest == (0, "replayed 3: 3 delivered, 0 back in the DLQ\n"), rest
        again = await _ferry(*replay)
        assert again == (0, "replayed 0: 0 delivered, 0 back in the DLQ\n"), again
    finally:
        await down.stop()
    assert sorted(json.loads(r.body)["run_id"] for r in down.accepted()) == run_ids
    for got in down.accepted():
        run_id = json.loads(got.body)["run_id"]
        assert got.delivery == delivery_id(run_id, f"callback:{down.url}")
        assert got.signature is not None and verify(SECRET, got.timestamp, got.body, got.signature)


async def test_a_callback_to_a_loopback_address_not_allow_listed_is_refused(
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    project: Project,
    receiver: Receiver,
    secret: str,
    connectors: list[WebhookConnector],
) -> None:
    names = TopicNames(prefix)
    refused = f"http://127.0.0.2:{receiver.port}/hook"  # loopback, but only 127.0.0.1/32 is allowed
    mapped = f"http://[::ffff:127.0.0.3]:{receiver.port}/hook"
    await produce_results(
        kafka_bootstrap,
        names,
        [result("run-refused", refused), result("run-mapped", mapped), result("run-ok", receiver.url)],
    )
    await _start(connectors, kafka_bootstrap, prefix, project, _settings(app_id, max_attempts=3))
    letters = {letter.run_id: letter for letter in await _dead_letters(kafka_bootstrap, names, 2)}
    assert set(letters) == {"run-refused", "run-mapped"}
    assert letters["run-refused"].reason.startswith("refused: 127.0.0.2 is a loopback address")
    assert letters["run-mapped"].reason.startswith("refused: ::ffff:7f00:3 (127.0.0.3) is a loopback address")
    assert all(letter.attempts == 0 for letter in letters.values())  # nothing was sent there
    await wait_for(lambda: len(receiver.accepted()) == 1, 30, what="the allowed callback to be delivered")
    assert [json.loads(r.body)["run_id"] for r in receiver.requests] == ["run-ok"]


async def _ferry(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *ferry_command(*args), cwd=ROOT, env=child_env(FERRY_WEBHOOK_SECRET=SECRET),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    assert "Traceback" not in err.decode(), err.decode()
    return process.returncode, out.decode()


async def test_deliveries_cut_short_by_a_stop_are_delivered_by_the_next_connector_under_the_same_id(
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    project: Project,
    receiver: Receiver,
    secret: str,
    connectors: list[WebhookConnector],
) -> None:
    names = TopicNames(prefix)
    run_ids = [f"run-{i}" for i in range(4)]
    receiver.status = 500
    await produce_results(kafka_bootstrap, names, [result(run_id, receiver.url) for run_id in run_ids])
    settings = _settings(app_id, max_attempts=50).model_copy(update={"stop_timeout_s": 0.1})
    first = await _start(connectors, kafka_bootstrap, prefix, project, settings)
    await wait_for(
        lambda: len({r.delivery for r in receiver.requests}) == len(run_ids), 60, what="every result to be attempted"
    )
    await first.stop()  # retries still under way: cut short, their offsets not committed
    connectors.remove(first)
    assert first.stats.delivered == first.stats.dead_lettered == 0
    receiver.status = 204
    await _start(connectors, kafka_bootstrap, prefix, project, settings)
    expected = {delivery_id(run_id, f"callback:{receiver.url}") for run_id in run_ids}
    await wait_for(
        lambda: {r.delivery for r in receiver.accepted()} == expected, 60, what="the next connector to deliver them"
    )
    assert {r.delivery for r in receiver.requests} == expected  # before and after the stop: one id per run


async def test_an_idle_connector_commits_what_it_delivered_and_stops_at_once(
    kafka_bootstrap: str,
    prefix: str,
    app_id: str,
    project: Project,
    receiver: Receiver,
    secret: str,
    connectors: list[WebhookConnector],
) -> None:
    names = TopicNames(prefix)
    settings = _settings(app_id, max_attempts=3).model_copy(update={"idle_poll_ms": 600_000})
    connector = await _start(connectors, kafka_bootstrap, prefix, project, settings)
    await produce_results(kafka_bootstrap, names, [result("run-then-quiet", receiver.url)])
    await wait_for(lambda: receiver.accepted(), 60, what="the delivery")
    # Nothing else arrives: the offset is committed all the same, not after the idle poll.
    await wait_for(lambda: _committed(kafka_bootstrap, settings.group_id), 30, what="the delivered offset committed")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await connector.stop()
    connectors.remove(connector)
    assert loop.time() - asked < 10  # not after the 600 s idle poll


async def _committed(bootstrap: str, group: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values()) == 1
