"""A worker's Prometheus metrics and the `/metrics` endpoint that serves them.

    metrics = WorkerMetrics(load)                  # one registry per worker, no global state
    async with MetricsServer(metrics.registry, MetricsEndpoint(port=9464)) as server:
        ...                                        # GET http://host:<server.port>/metrics

What is counted as it happens (a few counter and histogram updates per run, fed from
what the worker sees anyway: results, and the spans the engine emits):

    ferry_runs_total{agent,status,category}          finished runs (category "" when none)
    ferry_run_duration_seconds{agent}                a run's duration (histogram)
    ferry_run_queue_wait_seconds{agent}              request created → run started (histogram)
    ferry_llm_call_duration_seconds{agent,model}     one LLM step, retries included (histogram)
    ferry_tokens_total{agent,model,direction}        direction: input | output
    ferry_cost_usd_total{agent,model}                calls of unknown price add nothing
    ferry_llm_retries_total{category}                retry waits, by the error that caused them
    ferry_dlq_records_total                          records dead-lettered

What is read when scraped (nothing per run): `ferry_runs_in_flight{agent}` and
`ferry_runs_queued{agent}` from the worker's lanes, `ferry_consumer_lag_records{topic}`
from its consumer. Each worker has its own `CollectorRegistry`, so two workers in one
process never share a counter.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.contracts import RunResult, SpanEvent, SpanKind
from app.contracts.errors import ConfigError
from app.contracts.spans import SpanAttr

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9464  # the OpenTelemetry Prometheus exporter's port

_RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class WorkerLoad(Protocol):
    """What the scrape-time gauges read of a worker."""

    def lane_loads(self) -> Mapping[str, tuple[int, int]]:
        """Agent → (runs running, runs queued) in this worker now."""
        ...

    def consumer_lag(self) -> Mapping[str, int]:
        """Consumed topic → records not yet committed by the group, over the partitions held."""
        ...


class _LoadCollector(Collector):
    def __init__(self, load: WorkerLoad) -> None:
        self._load = load

    def collect(self) -> Iterable[GaugeMetricFamily]:
        running = GaugeMetricFamily("ferry_runs_in_flight", "Runs executing in this worker.", labels=["agent"])
        queued = GaugeMetricFamily(
            "ferry_runs_queued", "Runs read by this worker and waiting for a slot.", labels=["agent"]
        )
        for agent, (in_flight, waiting) in sorted(self._load.lane_loads().items()):
            running.add_metric([agent], in_flight)
            queued.add_metric([agent], waiting)
        lag = GaugeMetricFamily(
            "ferry_consumer_lag_records",
            "Records of a consumed topic after the group's committed offset, over the partitions this worker holds.",
            labels=["topic"],
        )
        for topic, records in sorted(self._load.consumer_lag().items()):
            lag.add_metric([topic], records)
        return [running, queued, lag]


@dataclass(frozen=True, slots=True)
class _AgentSeries:
    queue_wait: Histogram
    run_duration: Histogram


@dataclass(frozen=True, slots=True)
class _ModelSeries:
    duration: Histogram
    input_tokens: Counter
    output_tokens: Counter
    cost: Counter


class WorkerMetrics:
    """The metrics of one worker; the `record_*` methods are what the run path calls."""

    def __init__(self, load: WorkerLoad | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.runs = Counter(
            "ferry_runs", "Runs finished, by agent, status and error category.", ["agent", "status", "category"],
            registry=registry,
        )  # fmt: skip
        self.run_duration = Histogram(
            "ferry_run_duration_seconds", "Duration of a run.", ["agent"], buckets=_RUN_BUCKETS, registry=registry
        )
        self.queue_wait = Histogram(
            "ferry_run_queue_wait_seconds",
            "From the request's creation to the start of its run (time in Kafka and in the worker's queue).",
            ["agent"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.llm_call_duration = Histogram(
            "ferry_llm_call_duration_seconds",
            "Duration of one LLM step, its retries and waits included.",
            ["agent", "model"],
            buckets=_LLM_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "ferry_tokens", "Tokens of LLM calls, by direction (input, output).", ["agent", "model", "direction"],
            registry=registry,
        )  # fmt: skip
        self.cost = Counter(
            "ferry_cost_usd", "Cost of LLM calls in USD (calls of unknown price add nothing).", ["agent", "model"],
            registry=registry,
        )  # fmt: skip
        self.retries = Counter(
            "ferry_llm_retries", "Retries after a failed LLM attempt, by the error's category.", ["category"],
            registry=registry,
        )  # fmt: skip
        self.dlq = Counter("ferry_dlq_records", "Records sent to the dead-letter topic.", registry=registry)
        self._runs: dict[tuple[str, str, str], Counter] = {}
        self._agents: dict[str, _AgentSeries] = {}
        self._models: dict[tuple[str, str], _ModelSeries] = {}
        if load is not None:
            registry.register(_LoadCollector(load))

    def record_started(self, agent: str, created_at: datetime) -> None:
        """A run starts: how long its request waited (0 when the producer's clock is ahead)."""
        created = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=UTC)
        waited = (datetime.now(UTC) - created).total_seconds()
        self._agent(agent).queue_wait.observe(max(0.0, waited))

    def record_result(self, result: RunResult) -> None:
        category = result.error.category.value if result.error is not None else ""
        key = (result.agent, result.status.value, category)
        counted = self._runs.get(key)
        if counted is None:
            counted = self._runs[key] = self.runs.labels(*key)
        counted.inc()
        self._agent(result.agent).run_duration.observe(result.duration_ms / 1000.0)

    def record_span(self, agent: str, span: SpanEvent) -> None:
        """Spans the engine emits: LLM steps give latency, tokens and cost; waits give retries."""
        kind = span.kind
        if kind is SpanKind.LLM_CALL:
            attributes = span.attributes
            series = self._model(agent, str(attributes.get(SpanAttr.MODEL, "")))
            series.duration.observe(span.duration_ms / 1000.0)
            prompt = attributes.get(SpanAttr.PROMPT_TOKENS)
            completion = attributes.get(SpanAttr.COMPLETION_TOKENS)
            if prompt:
                series.input_tokens.inc(prompt)
            if completion:
                series.output_tokens.inc(completion)
            cost = attributes.get(SpanAttr.COST_USD)
            if cost:
                series.cost.inc(cost)
        elif kind is SpanKind.RETRY_WAIT:
            self.retries.labels(str(span.attributes.get(SpanAttr.REASON, ""))).inc()

    # The labelled series, looked up once per label set: `labels()` costs ~1 µs a call.
    def _agent(self, agent: str) -> _AgentSeries:
        series = self._agents.get(agent)
        if series is None:
            series = self._agents[agent] = _AgentSeries(self.queue_wait.labels(agent), self.run_duration.labels(agent))
        return series

    def _model(self, agent: str, model: str) -> _ModelSeries:
        series = self._models.get((agent, model))
        if series is None:
            series = self._models[(agent, model)] = _ModelSeries(
                self.llm_call_duration.labels(agent, model),
                self.tokens.labels(agent, model, "input"),
                self.tokens.labels(agent, model, "output"),
                self.cost.labels(agent, model),
            )
        return series

    def record_dead_letter(self) -> None:
        self.dlq.inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where `/metrics` listens. `port=0` takes a free port; `fallback`: if `port` is taken,
    take a free one (and log it) instead of failing — for the default port, never for one
    the operator chose."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_METRICS_PORT
    fallback: bool = False


class MetricsServer:
    """`GET /metrics` over HTTP on the worker's event loop (a scrape reads the lanes on
    the thread that changes them, and costs the loop nothing between scrapes).

    A few lines of asyncio rather than aiohttp's web server: one path, GET and HEAD, the
    connection kept for the next scrape, which is all a scraper needs; aiohttp.web with
    its mime tables was ~1.3 MiB of every worker's memory (bench/RESULTS.md)."""

    def __init__(self, registry: CollectorRegistry, endpoint: MetricsEndpoint) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.port: int | None = None
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.endpoint.host in ("0.0.0.0", "") else self.endpoint.host
        return f"http://{host}:{self.port}/metrics"

    async def start(self) -> None:
        """Listen; a taken port is a `ConfigError` (one line naming it and the fix)."""
        self.port = await self._bind()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for serving in self._serving:
            serving.cancel()  # a scraper still connected is let go (the port is free once stopped)
        await asyncio.gather(*self._serving, return_exceptions=True)
        if server is not None:
            await server.wait_closed()  # from Python 3.12 this waits for the connections too

    async def _bind(self) -> int:
        wanted = self.endpoint.port
        try:
            return await self._listen(wanted)
        except OSError as exc:
            if not (self.endpoint.fallback and exc.errno == errno.EADDRINUSE):
                raise ConfigError(
                    f"cannot serve metrics on {self.endpoint.host}:{wanted}: {exc.strerror or exc}"
                    " — fix: pass --metrics-port with a free port (0 picks one), or --no-metrics"
                ) from None
        port = await self._listen(0)
        log.warning("metrics: port %d is taken; serving /metrics on port %d instead", wanted, port)
        return port

    async def _listen(self, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, self.endpoint.host, port)
        return int(self._server.sockets[0].getsockname()[1])  # the port asked for, or a free one for 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one connection, answered in turn: kept open for HTTP/1.1 (a scraper's
        next scrape, and the scraper closes first), closed after one for HTTP/1.0 or when asked.
        A request that is malformed, too long or too slow ends the connection."""
        serving = asyncio.current_task()
        assert serving is not None
        self._serving.add(serving)
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT_S)
                request_line, _, headers = head.partition(b"\r\n")
                # Kept only after a scrape: any other request may carry a body this server never reads.
                keep_alive = (
                    request_line.startswith((b"GET ", b"HEAD "))
                    and request_line.endswith(b"HTTP/1.1")
                    and b"connection: close" not in headers.lower()
                )
                writer.write(self._respond(request_line, keep_alive=keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._serving.discard(serving)
            writer.close()

    def _respond(self, request_line: bytes, *, keep_alive: bool) -> bytes:
        method, _, rest = request_line.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if path != b"/metrics":
            return _response(b"404 Not Found", b"not found: only /metrics is served\n", b"text/plain", keep_alive)
        if method not in (b"GET", b"HEAD"):
            return _response(b"405 Method Not Allowed", b"GET /metrics\n", b"text/plain", keep_alive, b"GET, HEAD")
        body = generate_latest(self.registry)
        content_type = CONTENT_TYPE_LATEST.encode()
        return _response(b"200 OK", body, content_type, keep_alive, send_body=method == b"GET")


#: How long a connection may wait for (the rest of) its next request: aiohttp's keep-alive timeout.
_IDLE_TIMEOUT_S = 75.0


def _response(
    status: bytes, body: bytes, content_type: bytes, keep_alive: bool, allow: bytes = b"", *, send_body: bool = True
) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: " + str(len(body)).encode()
        + (b"\r\nAllow: " + allow if allow else b"")
        + (b"\r\n\r\n" if keep_alive else b"\r\nConnection: close\r\n\r\n")
    )  # fmt: skip
    return head + body if send_body else head
