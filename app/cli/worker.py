"""`ferry worker`: run the project's agents as Kafka stream processors until stopped.

Several workers with the same `--app-id` share the partitions (a Kafka consumer group).
SIGTERM / SIGINT drain: running runs get `--drain-seconds` to finish, queued ones are
left to Kafka for redelivery, then the worker exits 0. Whatever the broker's state, the
process is gone `STOP_GRACE_S` after the drain deadline: a stop that cannot commit or
leave its group (the broker is down) is abandoned there, its unfinished runs left to
redelivery (nothing acked is lost: an unacked offset was never committed). A second
signal exits at once. A worker that cannot start (no
broker, broker unreachable, a topic conflicting with its spec, a broken project) says
why in one line and exits 2, with whatever it had started stopped again.

Beside its agents a worker runs the run-history projector (`--no-history`), the
webhook connector (`--no-webhooks`, docs/webhooks.md) and, when connectors/ configures
them, the Kafka Connect sink feeds and inbound-topic triggers (`--no-connectors`), serves
Prometheus metrics on `/metrics` (`--metrics-port`, `--no-metrics`) and logs one line
per finished run (`--log-format json` for one JSON object per line); each is part of
the worker's own ordered start, so a failing one stops the start and undoes the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.broker import require_broker
from app.cli.history import add_history_options, projector_from_args
from app.cli.process_main import exit_now, run_main
from app.cli.subparsers import Subparsers

if TYPE_CHECKING:
    from app.observability.metrics import MetricsEndpoint

log = logging.getLogger("ferry.worker")

#: How long after the drain deadline a stopping worker may take to commit, leave its
#: group and close its clients before the process exits regardless.
STOP_GRACE_S = 4.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("worker", help="run agents as Kafka stream processors")
    add_stream_options(parser)
    parser.add_argument("--drain-seconds", type=float, default=20.0, help="on stop: time runs get to finish")
    parser.add_argument("--read-ahead", type=int, default=2000, help="runs queued or running per agent")
    parser.add_argument("--no-traces", action="store_true", help="do not produce span events to runs.traces")
    parser.add_argument(
        "--from-deployments",
        action="store_true",
        help="no project folder: run the active deployment of ferry.deployments (--project ignored)",
    )
    parser.add_argument(
        "--no-deployments",
        action="store_true",
        help="run the project folder as it is: ignore ferry.deployments (docs/deployments.md)",
    )
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        default=10,  # StreamSettings' default (not imported here: app.streams loads faust)
        help="how long the broker may hold a fetch while a partition is left out of it (records in hand): "
        "the delay such a partition's next record may see; a fetch covering every partition waits 500 ms "
        "(any record answers it at once)",
    )
    add_history_options(parser)
    parser.add_argument(
        "--no-webhooks",
        action="store_true",
        help="deliver no run results to callback URLs and webhook connectors (run `ferry connectors run` instead)",
    )
    parser.add_argument(
        "--no-connectors",
        action="store_true",
        help="run neither the Kafka Connect sink feeds nor the inbound-topic triggers of connectors/",
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="port of the Prometheus /metrics endpoint (default 9464, or a free one if taken; 0: a free one)",
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address /metrics listens on")
    parser.add_argument("--no-metrics", action="store_true", help="serve no /metrics and keep no metrics")
    add_log_format_option(parser)
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="Ferry's own lines from this level on (info: one per finished run; warning: failed runs only)",
    )
    parser.set_defaults(handler=_worker)


def add_log_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="text (default) or json: one JSON object per line (also $FERRY_LOG_FORMAT)",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text} (0 … 65535; 0 picks a free port)")
    return port


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """Options every streams command shares (also read from FERRY_* variables)."""
    parser.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder")
    parser.add_argument("--agents", default=None, help="comma-separated agents and pipelines (default: all)")
    parser.add_argument("--broker", default=None, help="bootstrap servers (default: $FERRY_BROKER or the dev stack)")
    parser.add_argument("--app-id", default=os.environ.get("FERRY_APP_ID", "ferry"), help="consumer group id")
    parser.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of every topic"
    )
    parser.add_argument("--replication", type=int, default=None, help="override the topic specs' replication")


def resolve_broker(args: argparse.Namespace) -> str:
    return require_broker(args.broker)


def agents_of(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(a.strip() for a in args.agents.split(",") if a.strip()) if args.agents else None


def configure_logging(log_format: str | None = None, *, ferry_level: int = logging.WARNING) -> None:
    """Logging of a Ferry process, once at its start: `log_format` (else $FERRY_LOG_FORMAT,
    else text); Ferry's own lines from `ferry_level` on, other libraries' from WARNING."""
    from app.contracts.errors import ConfigError
    from app.observability.logs import LOG_FORMAT_ENV, resolve_log_format
    from app.observability.logs import configure_logging as configure
    from app.streams.kafka_logs import install_kafka_log_filters

    try:
        resolved = resolve_log_format(log_format, os.environ)
    except ValueError as exc:
        raise ConfigError(f"{LOG_FORMAT_ENV}={exc} is not a log format — fix: set it to text or json") from None
    configure(resolved, ferry_level=ferry_level)
    install_kafka_log_filters()


def _worker(args: argparse.Namespace) -> int:
    level = logging.getLevelName(args.log_level.upper())
    configure_logging(args.log_format, ferry_level=level)
    log.setLevel(min(level, logging.INFO))  # the worker's start and stop lines, whatever the level
    bootstrap = resolve_broker(args)
    return run_main(_run(args, bootstrap))


def _on_signal(stop: asyncio.Event, drain_seconds: float) -> None:
    """First signal: drain, with a watchdog that ends the process whatever hangs; second: exit now."""
    if stop.is_set():
        log.warning("second stop signal: exiting now; unfinished runs will be redelivered")
        exit_now(0)
    stop.set()
    watchdog = threading.Timer(drain_seconds + STOP_GRACE_S, _abandon_stop, args=(drain_seconds,))
    watchdog.daemon = True  # a stop that finishes in time exits without waiting for it
    watchdog.start()


def _abandon_stop(drain_seconds: float) -> None:
    # From the watchdog's thread: the event loop may be the thing that is stuck.
    log.warning(
        "stop did not finish %.0fs after the %.0fs drain (is the Kafka broker reachable?): exiting without "
        "committing; unfinished runs will be redelivered",
        STOP_GRACE_S,
        drain_seconds,
    )
    exit_now(0)


def metrics_endpoint(args: argparse.Namespace) -> MetricsEndpoint | None:
    """Where the worker serves /metrics: None with --no-metrics; the default port falls
    back to a free one when taken (several workers on one machine), a chosen one does not."""
    from app.observability.metrics import DEFAULT_METRICS_PORT, MetricsEndpoint

    if args.no_metrics:
        return None
    if args.metrics_port is None:
        return MetricsEndpoint(host=args.metrics_host, port=DEFAULT_METRICS_PORT, fallback=True)
    return MetricsEndpoint(host=args.metrics_host, port=args.metrics_port)


async def _run(args: argparse.Namespace, bootstrap: str) -> int:
    from app.cli.gc_tuning import release_heap_when_quiet, settle_started_process
    from app.connectors.services import prepare_connectors
    from app.connectors.webhook import WebhookSettings, webhooks_group
    from app.project import load_project
    from app.streams import StreamSettings, TopicNames, Worker
    from app.streams.approvals import ApprovalService
    from app.streams.retry_topics import retry_forwarders
    from app.streams.scheduled import ScheduledRuns
    from app.streams.topic_plan import internal_replication

    if args.from_deployments:
        from app.deploy.versions import active_project

        folder = tempfile.mkdtemp(prefix="ferry-worker-project-")  # the worker's base; each version has its own
        project = await active_project(bootstrap, TopicNames(args.topic_prefix), Path(folder))
        log.info("deployments: started from the active deployment (%s)", project.root.name)
    else:
        project = load_project(args.project)
    settings = StreamSettings(
        bootstrap=bootstrap,
        app_id=args.app_id,
        topic_prefix=args.topic_prefix,
        agents=agents_of(args),
        replication=args.replication,
        drain_seconds=args.drain_seconds,
        read_ahead=args.read_ahead,
        emit_traces=not args.no_traces,
        fetch_max_wait_ms=args.fetch_max_wait_ms,
    )
    history = projector_from_args(
        args, bootstrap, TopicNames(settings.topic_prefix), settings.app_id, project.config.history.retention_days
    )
    connectors = await prepare_connectors(
        project,
        TopicNames(settings.topic_prefix),
        bootstrap,
        settings.app_id,
        webhooks=None if args.no_webhooks else WebhookSettings(group_id=webhooks_group(settings.app_id)),
        sinks_and_inbound=not args.no_connectors,
        replication=args.replication,
    )
    # Runs parked for a human decision: listed for `ferry approvals`, expired by one leader.
    approvals = ApprovalService(
        bootstrap, project, TopicNames(settings.topic_prefix), settings.app_id, replication=args.replication
    )
    # Runs failed by an outage come back from their retry topics (ferry.yaml durability.agents.*.retry_delays).
    names = TopicNames(settings.topic_prefix)
    retries = retry_forwarders(
        project.config.durability.all_retry_delays(),
        bootstrap,
        names,
        settings.app_id,
        replication=internal_replication(project, names, args.replication),
    )
    # trigger_agent_at's runs wait on ferry.triggers; one leader starts each when due.
    scheduled = ScheduledRuns(
        bootstrap, project, TopicNames(settings.topic_prefix), settings.app_id, replication=args.replication
    )
    worker = Worker(
        project,
        settings,
        history=history,
        metrics=metrics_endpoint(args),
        services=[*connectors.all(), approvals, scheduled, *retries],
        follow_deployments=not args.no_deployments,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, settings.drain_seconds)
    await worker.start()  # a failed start has stopped what it started, then raises
    settle_started_process()  # the collector skips what start-up built (app/cli/gc_tuning.py)
    if connectors.inbound is not None:
        try:  # a new inbound group starts at the topics' end: say "consuming" once that end is fixed
            await connectors.inbound.wait_ready()
        except TimeoutError:
            log.warning("inbound: no partitions assigned yet; records before that may be skipped")
    if worker.versions is not None and worker.versions.state.active is not None:
        log.info("deployments: running %s (ferry.deployments)", worker.versions.state.active)
    log.info(
        "worker %s consuming %d topics on %s (%s loop): %s",
        settings.app_id,
        len(worker.topics),
        bootstrap,
        type(asyncio.get_running_loop()).__module__.partition(".")[0],  # uvloop or asyncio (FERRY_EVENT_LOOP)
        ", ".join(worker.topics),
    )
    if worker.history is not None and worker.history.store is not None:
        log.info(
            "history: projecting runs into %s (group %s)",
            worker.history.store.describe(),
            worker.history.settings.group_id,
        )
    if connectors.webhooks is not None:
        log.info("webhooks: delivering %s in group %s", worker.names.results, connectors.webhooks.settings.group_id)
    if connectors.feeder is not None:
        log.info("sinks: feeding %s from %s", ", ".join(connectors.feeder.topics), worker.names.results)
    if connectors.inbound is not None:
        log.info(
            "inbound: records of %s run %s", ", ".join(connectors.inbound.topics), ", ".join(connectors.inbound.agents)
        )
    if connectors.triggers is not None:
        log.info("triggers: %s", connectors.triggers.describe())
    if worker.metrics_server is not None:
        log.info("metrics: serving %s:%d/metrics", worker.metrics_server.endpoint.host, worker.metrics_server.port)
    # What a busy spell freed goes back to the system once the worker is quiet (gc_tuning.py).
    releasing = asyncio.create_task(release_heap_when_quiet(worker.records_handled, worker.busy))
    await stop.wait()
    releasing.cancel()
    log.info("stopping: draining running runs…")
    await worker.stop()
    if args.from_deployments:
        shutil.rmtree(project.root.parent, ignore_errors=True)  # the materialised base project
    return 0
