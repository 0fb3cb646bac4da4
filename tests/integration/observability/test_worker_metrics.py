"""A worker's `/metrics`, scraped over HTTP as Prometheus does, after a real load on the broker:
every run counted once by agent, status and category; tokens and cost equal to what the
results report; retries by category; the DLQ counted; in-flight and queued gauges and the
consumer lag back to 0 once the load is done."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import FaultKind, FaultReply, LLMSimulator, Match, Rule, SequenceReply, TextReply
from app.engine import EngineSettings
from app.observability.metrics import MetricsEndpoint
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from tests.integration.kafka_helpers import produce, unique, wait_for
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

OK_RUNS = 24
FAILED_RUNS = 4
RETRIED_RUNS = 3
CAP = 4
PRICES = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= series)


@pytest.fixture
async def simulator() -> AsyncIterator[LLMSimulator]:
    rules = [
        Rule(match=Match(last_user_contains="refuse"), reply=FaultReply(fault=FaultKind.AUTH)),
        Rule(  # each retried run: a 429 first, then the answer (one run at a time: cap 1)
            match=Match(last_user_contains="busy"),
            reply=SequenceReply(
                steps=[FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=0.01), TextReply(text="done")],
                when_exhausted="cycle",
            ),
        ),
        Rule(reply=TextReply(text="fine"), delay_ms=150),  # slow enough to see runs queue behind the cap
    ]
    async with LLMSimulator(rules, latency_ms=0, record_requests=False) as sim:
        yield sim


async def test_metrics_after_a_load_count_every_run_and_settle_back_to_zero(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator
) -> None:
    project = write_project(
        tmp_path,
        {
            "echo": llm_agent(max_concurrent_runs=CAP),
            "patient": llm_agent(max_concurrent_runs=1, retry_options={"attempts": 3, "initial_delay": 0}),
        },
        config={"models": {"openai/sim-model": PRICES}},
    )
    names = TopicNames(unique("met") + ".")
    settings = StreamSettings(bootstrap=kafka_bootstrap, app_id=unique("met-app"), topic_prefix=names.prefix)
    worker = Worker(
        project,
        settings,
        engine_settings=EngineSettings(llm_base_url=simulator.base_url),
        metrics=MetricsEndpoint(host="127.0.0.1", port=0),
    )
    await worker.start()
    try:
        await worker.wait_assigned()
        assert worker.metrics_server is not None and worker.metrics_server.port
        url = worker.metrics_server.url
        requests = (
            [RunRequest.new("echo", {"message": f"job {i}"}) for i in range(OK_RUNS)]
            + [RunRequest.new("echo", {"message": f"refuse {i}"}) for i in range(FAILED_RUNS)]
            + [RunRequest.new("patient", {"message": f"busy {i}"}) for i in range(RETRIED_RUNS)]
        )
        async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as sub:
            for request in requests:
                await sub.send(request)
            await sub.flush()

            async def echo_is_full() -> bool:
                samples = await scrape(url)
                in_flight = value(samples, "ferry_runs_in_flight", agent="echo")
                queued = value(samples, "ferry_runs_queued", agent="echo")
                assert in_flight <= CAP
                return in_flight == CAP and queued > 0

            await wait_for(echo_is_full, 60, interval=0.02, what="the gauges to show echo's cap full and runs queued")
            await produce(kafka_bootstrap, names.request("echo"), [(b"junk", b"not a run request")])
            results = await watcher.wait_for([r.run_id for r in requests], timeout=120)

        assert len(results) == len(requests)
        for request in requests[:OK_RUNS] + requests[-RETRIED_RUNS:]:
            assert results[request.run_id].status == RunStatus.COMPLETED

        async def settled() -> bool:
            samples = await scrape(url)
            return (
                total(samples, "ferry_runs_in_flight") == 0
                and total(samples, "ferry_runs_queued") == 0
                and total(samples, "ferry_consumer_lag_records") == 0
                and value(samples, "ferry_dlq_records_total") == 1
            )

        await wait_for(settled, 30, what="in-flight, queued and lag back to 0, the DLQ record counted")
        samples = await scrape(url)
    finally:
        await worker.stop()

    n = len(requests)
    assert total(samples, "ferry_runs_total") == n
    assert value(samples, "ferry_runs_total", agent="echo", status="completed", category="") == OK_RUNS
    assert value(samples, "ferry_runs_total", agent="echo", status="failed", category="auth") == FAILED_RUNS
    assert value(samples, "ferry_runs_total", agent="patient", status="completed", category="") == RETRIED_RUNS
    assert total(samples, "ferry_run_duration_seconds_count") == n
    assert total(samples, "ferry_run_queue_wait_seconds_count") == n
    assert value(samples, "ferry_llm_retries_total", category="rate_limit") == RETRIED_RUNS
    # One LLM step per run, failed ones included; tokens and cost as the results report them.
    assert total(samples, "ferry_llm_call_duration_seconds_count", model="openai/sim-model") == n
    usage = [r.usage for r in results.values()]
    assert total(samples, "ferry_tokens_total", direction="input") == sum(u.prompt_tokens for u in usage) > 0
    assert total(samples, "ferry_tokens_total", direction="output") == sum(u.completion_tokens for u in usage) > 0
    cost = sum(u.cost_usd or 0.0 for u in usage)
    assert cost > 0 and math.isclose(total(samples, "ferry_cost_usd_total", model="openai/sim-model"), cost)
    assert set(total(samples, "ferry_consumer_lag_records", topic=t) for t in worker.topics) == {0.0}
