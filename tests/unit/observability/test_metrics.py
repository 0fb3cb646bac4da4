"""`WorkerMetrics` and `MetricsServer` without a broker: what a scrape shows after the calls
the run path makes, that two workers never share a counter, and how `/metrics` listens."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent, SpanKind
from app.contracts.errors import ConfigError, ErrorCategory
from app.observability.metrics import MetricsEndpoint, MetricsServer, WorkerMetrics

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def samples(metrics: WorkerMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def result(agent: str = "echo", status: RunStatus = RunStatus.COMPLETED, **fields: object) -> RunResult:
    request = RunRequest.new(agent, {"message": "hi"})
    return RunResult.for_request(request, status, started_at=NOW, ended_at=NOW + timedelta(seconds=2), **fields)


def span(kind: SpanKind, **attributes: object) -> SpanEvent:
    return SpanEvent(
        run_id="r1", trace_id="0" * 32, span_id="1" * 16, kind=kind, name=kind.value,
        start=NOW, end=NOW + timedelta(milliseconds=300), duration_ms=300.0, attributes=attributes,
    )  # fmt: skip


class _Load:
    def __init__(self, loads: Mapping[str, tuple[int, int]], lag: Mapping[str, int]) -> None:
        self.loads, self.lag = loads, lag

    def lane_loads(self) -> Mapping[str, tuple[int, int]]:
        return self.loads

    def consumer_lag(self) -> Mapping[str, int]:
        return self.lag


def test_runs_are_counted_by_agent_status_and_category_with_their_duration() -> None:
    metrics = WorkerMetrics()
    metrics.record_result(result())
    metrics.record_result(result())
    failed = RunError(category=ErrorCategory.RATE_LIMIT, message="429")
    metrics.record_result(result(status=RunStatus.FAILED, error=failed))
    seen = samples(metrics)
    ok = frozenset({("agent", "echo"), ("status", "completed"), ("category", "")})
    assert seen[("ferry_runs_total", ok)] == 2
    assert (
        seen[
            (
                "ferry_runs_total",
                ok - {("status", "completed"), ("category", "")} | {("status", "failed"), ("category", "rate_limit")},
            )
        ]
        == 1
    )
    assert seen[("ferry_run_duration_seconds_count", frozenset({("agent", "echo")}))] == 3
    assert seen[("ferry_run_duration_seconds_sum", frozenset({("agent", "echo")}))] == pytest.approx(6.0)


def test_llm_steps_give_latency_tokens_and_cost_by_model_and_waits_give_retries() -> None:
    metrics = WorkerMetrics()
    step = {"model": "openai/m", "llm.prompt_tokens": 40, "llm.completion_tokens": 7, "cost_usd": 0.0003}
    metrics.record_span("echo", span(SpanKind.LLM_CALL, **step))
    metrics.record_span("echo", span(SpanKind.LLM_CALL, **{**step, "cost_usd": None}))  # unknown price: no cost
    metrics.record_span("echo", span(SpanKind.RETRY_WAIT, reason="rate_limit", wait_seconds=1.0))
    metrics.record_span("echo", span(SpanKind.TOOL_CALL, tool="lookup"))  # nothing to count
    seen = samples(metrics)
    by_model = frozenset({("agent", "echo"), ("model", "openai/m")})
    assert seen[("ferry_llm_call_duration_seconds_count", by_model)] == 2
    assert seen[("ferry_llm_call_duration_seconds_sum", by_model)] == pytest.approx(0.6)
    assert seen[("ferry_tokens_total", by_model | {("direction", "input")})] == 80
    assert seen[("ferry_tokens_total", by_model | {("direction", "output")})] == 14
    assert seen[("ferry_cost_usd_total", by_model)] == pytest.approx(0.0003)
    assert seen[("ferry_llm_retries_total", frozenset({("category", "rate_limit")}))] == 1


def test_queue_wait_is_from_the_requests_creation_and_never_negative() -> None:
    metrics = WorkerMetrics()
    metrics.record_started("echo", datetime.now(UTC) - timedelta(seconds=5))
    metrics.record_started("echo", datetime.now(UTC) + timedelta(hours=1))  # a producer's clock ahead
    metrics.record_started("echo", datetime.now(UTC).replace(tzinfo=None))  # naive: taken as UTC
    seen = samples(metrics)
    agent = frozenset({("agent", "echo")})
    assert seen[("ferry_run_queue_wait_seconds_count", agent)] == 3
    assert 5.0 <= seen[("ferry_run_queue_wait_seconds_sum", agent)] < 6.0


def test_gauges_and_lag_are_read_at_scrape_time() -> None:
    load = _Load({"echo": (3, 10), "other": (0, 0)}, {"agent.echo.requests": 42})
    metrics = WorkerMetrics(load)
    seen = samples(metrics)
    assert seen[("ferry_runs_in_flight", frozenset({("agent", "echo")}))] == 3
    assert seen[("ferry_runs_queued", frozenset({("agent", "echo")}))] == 10
    assert seen[("ferry_runs_in_flight", frozenset({("agent", "other")}))] == 0
    assert seen[("ferry_consumer_lag_records", frozenset({("topic", "agent.echo.requests")}))] == 42
    load.loads = {"echo": (0, 0)}
    assert samples(metrics)[("ferry_runs_in_flight", frozenset({("agent", "echo")}))] == 0


def test_two_workers_in_one_process_share_no_counter() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.record_result(result())
    first.record_dead_letter()
    assert samples(first)[("ferry_dlq_records_total", frozenset())] == 1
    assert samples(second)[("ferry_dlq_records_total", frozenset())] == 0
    assert not any(name == "ferry_runs_total" for name, _ in samples(second))


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def test_port_0_serves_on_a_free_port_until_stopped() -> None:
    metrics = WorkerMetrics()
    metrics.record_dead_letter()
    async with MetricsServer(metrics.registry, MetricsEndpoint(host="127.0.0.1", port=0)) as server:
        assert server.port and server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert "ferry_dlq_records_total 1.0" in await _get(server.url)
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", server.port))


async def test_a_chosen_port_that_is_taken_is_one_config_error_and_the_default_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        registry = WorkerMetrics().registry
        with pytest.raises(ConfigError) as caught:
            await MetricsServer(registry, MetricsEndpoint(host="127.0.0.1", port=port)).start()
        assert f"cannot serve metrics on 127.0.0.1:{port}" in str(caught.value)
        assert "--metrics-port" in str(caught.value) and "--no-metrics" in str(caught.value)

        with caplog.at_level(logging.WARNING, logger="app.observability.metrics"):
            async with MetricsServer(registry, MetricsEndpoint(host="127.0.0.1", port=port, fallback=True)) as server:
                assert server.port not in (None, port)
                assert "# TYPE ferry_runs_total counter" in await _get(server.url)
        assert f"port {port} is taken; serving /metrics on port {server.port} instead" in caplog.text
