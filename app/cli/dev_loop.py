"""`ferry dev` (no action): the local loop — a worker that reloads the project on every save.

Uses the broker of `--broker` / `FERRY_BROKER` / the running dev stack, else starts the
dev stack's Kafka. Runs one worker (history recorded, so `ferry runs` shows the loop's
runs) that follows `ferry.deployments`; each save that lints clean becomes an ephemeral
deployment, made active through the same path as `ferry deploy`, and the tests of the
agents whose files changed run again. Lint errors are printed with file and line; the
loop keeps serving the last good version. Ctrl-C stops it. docs/deployments.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.history import add_history_options

if TYPE_CHECKING:
    from app.observability.history.projector import HistoryProjector
    from app.streams.naming import TopicNames


def add_loop_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder (the loop)")
    parser.add_argument("--broker", default=None, help="bootstrap servers (default: $FERRY_BROKER or the dev stack)")
    parser.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of every topic"
    )
    parser.add_argument("--app-id", default=os.environ.get("FERRY_APP_ID", "ferry-dev"), help="consumer group id")
    parser.add_argument("--no-tests", action="store_true", help="do not rerun the tests of changed agents")
    add_history_options(parser)


def _say(message: str) -> None:
    print(f"ferry dev: {message}", file=sys.stderr, flush=True)


def run_loop(args: argparse.Namespace) -> int:
    from app.cli.broker import broker_address
    from app.cli.process_main import run_main
    from app.cli.worker import configure_logging

    configure_logging(None)
    args.project_root = Path(args.project).resolve()
    bootstrap = broker_address(args.broker)
    if bootstrap is None:
        from app.devstack.stack import DevStack, resolve_home

        _say("no broker running: starting the dev stack's Kafka")
        bootstrap = DevStack(resolve_home(args.home)).up(["kafka"], progress=_say)["kafka"].address
    return run_main(_loop(args, bootstrap))


async def _loop(args: argparse.Namespace, bootstrap: str) -> int:
    from app.deploy.dev_loop import DevLoop
    from app.project import load_project
    from app.streams import StreamSettings, TopicNames, Worker

    root: Path = args.project_root
    names = TopicNames(args.topic_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker: Worker | None = None

    async def in_force(version: str) -> None:
        assert worker is not None and worker.versions is not None  # started before any reload
        await asyncio.wait_for(worker.versions.in_force(version), 30)

    dev = DevLoop(root, bootstrap, names, say=_say, in_force=in_force, run_tests=None if args.no_tests else _run_tests)
    while await dev.publish() is None:  # a broken project at start: wait for a save that fixes it
        _say("waiting for a save that fixes it…")
        await dev.watch_once(stop)
        if stop.is_set():
            return 0
    history = _history(args, bootstrap, names, root)
    settings = StreamSettings(
        bootstrap=bootstrap, app_id=args.app_id, topic_prefix=args.topic_prefix, drain_seconds=2.0
    )
    worker = Worker(load_project(root), settings, history=history)
    await worker.start()
    await in_force(dev.version or "")
    _say(f"running {dev.version} of {root} on {bootstrap}; watching for saves (Ctrl-C stops)")
    try:
        await dev.watch(stop)
    finally:
        await worker.stop()
    return 0


def _history(args: argparse.Namespace, bootstrap: str, names: TopicNames, root: Path) -> HistoryProjector | None:
    from app.cli.history import projector_from_args
    from app.project import load_project

    retention = load_project(root).config.history.retention_days
    return projector_from_args(args, bootstrap, names, args.app_id, retention)


async def _run_tests(root: Path, agents: list[str] | None) -> None:
    from app.agent_tests import arun_project_tests

    patterns: list[str | None] = [None] if agents is None else [f"{agent}::" for agent in agents]
    for pattern in patterns:
        try:
            report = await arun_project_tests(root, pattern=pattern)
        except Exception as exc:  # a broken suite is said, the loop goes on
            _say(f"tests could not run: {exc}")
            continue
        if not report.cases:
            continue
        for case in report.cases:
            if not case.passed:
                _say(f"test {case.id} {case.status}: {case.failure_reason or ''}")
        scope = pattern.rstrip(":") if pattern else "all agents"
        _say(f"tests ({scope}): {report.passed} passed, {report.failed} failed, {report.errored} could not run")
