"""`ferry worker`: run the project's agents as Kafka stream processors until stopped.

Several workers with the same `--app-id` share the partitions (a Kafka consumer group).
SIGTERM / SIGINT drain: running runs get `--drain-seconds` to finish, queued ones are
left to Kafka for redelivery, then the worker exits 0. A worker that cannot start (no
broker, broker unreachable, a topic conflicting with its spec, a broken project) says
why in one line and exits 2, with whatever it had started stopped again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from app.cli.broker import require_broker
from app.cli.process_main import run_main


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("worker", help="run agents as Kafka stream processors")
    add_stream_options(parser)
    parser.add_argument("--drain-seconds", type=float, default=20.0, help="on stop: time runs get to finish")
    parser.add_argument("--read-ahead", type=int, default=2000, help="runs queued or running per agent")
    parser.add_argument("--no-traces", action="store_true", help="do not produce span events to runs.traces")
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        default=10,
        help="broker fetch wait: lower is lower latency, higher is less idle CPU",
    )
    parser.set_defaults(handler=_worker)


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


def configure_logging() -> None:
    from app.streams.kafka_logs import install_kafka_log_filters

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_kafka_log_filters()


def _worker(args: argparse.Namespace) -> int:
    configure_logging()
    bootstrap = resolve_broker(args)
    return run_main(_run(args, bootstrap))


async def _run(args: argparse.Namespace, bootstrap: str) -> int:
    from app.project import load_project
    from app.streams import StreamSettings, Worker

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
    worker = Worker(project, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()  # a failed start has stopped what it started, then raises
    print(
        f"ferry: worker {settings.app_id} consuming {len(worker.topics)} topics on {bootstrap}: "
        + ", ".join(worker.topics),
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    print("ferry: stopping: draining running runs…", file=sys.stderr, flush=True)
    await worker.stop()
    return 0
