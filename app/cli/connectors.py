"""`ferry connectors run|apply` and `ferry webhooks replay`: Ferry's connectors on their own.

`connectors run` delivers `runs.results` to callback URLs and webhook connectors
(docs/webhooks.md) until SIGTERM / SIGINT, in the consumer group `<app-id>.webhooks`,
after creating the results and `webhooks.dlq` topics if missing. When the project has
them it also feeds the topics of fed Kafka Connect sinks (group `<app-id>.sinks`) and
turns records of inbound topics into runs (group `<app-id>.inbound`); see
connectors/README.md. `connectors apply` registers the project's Kafka Connect
connectors with a Connect cluster (exit 0 all RUNNING, 1 otherwise). `webhooks replay` sends
the DLQ's entries again (exit 0 all delivered, 1 some back in the DLQ). Both exit 2 with
one line when the broker is unreachable or the project is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, configure_logging, resolve_broker

if TYPE_CHECKING:
    from app.connectors.webhook import WebhookSettings

log = logging.getLogger("ferry.webhooks")

DEFAULT_CONNECT_URL = "http://127.0.0.1:8083"


def register(subparsers: Subparsers) -> None:
    connectors = subparsers.add_parser("connectors", help="run Ferry's outbound connectors")
    actions = connectors.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="deliver run results to webhooks until stopped")
    _add_options(run)
    run.set_defaults(handler=_run)
    apply = actions.add_parser("apply", help="register or update the Kafka Connect connectors of connectors/")
    apply.add_argument("--project", default=os.environ.get("FERRY_PROJECT", "."), help="project folder")
    apply.add_argument(
        "--connect-url",
        default=os.environ.get("FERRY_CONNECT_URL", DEFAULT_CONNECT_URL),
        help=f"Kafka Connect REST API (default: $FERRY_CONNECT_URL or {DEFAULT_CONNECT_URL})",
    )
    apply.add_argument(
        "--topic-prefix", default=os.environ.get("FERRY_TOPIC_PREFIX", ""), help="namespace of Ferry's topics"
    )
    apply.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the connectors to settle")
    apply.set_defaults(handler=_apply)

    webhooks = subparsers.add_parser("webhooks", help="webhook deliveries")
    webhook_actions = webhooks.add_subparsers(dest="action", metavar="ACTION")
    webhook_actions.required = True
    replay = webhook_actions.add_parser("replay", help="send the entries of webhooks.dlq again")
    replay.add_argument("--limit", type=int, default=None, help="replay at most N entries (default: all)")
    _add_options(replay)
    replay.set_defaults(handler=_replay)


def _add_options(parser: argparse.ArgumentParser) -> None:
    add_stream_options(parser)
    parser.add_argument("--max-attempts", type=int, default=None, help="attempts per delivery (default 6)")
    parser.add_argument("--retry-base-seconds", type=float, default=None, help="first back-off ceiling (default 1)")
    parser.add_argument("--per-destination", type=int, default=None, help="attempts in flight per host (default 4)")
    parser.add_argument("--log-format", default=None, choices=("text", "json"))


def _settings(args: argparse.Namespace) -> WebhookSettings:
    from app.connectors.webhook import RetryPolicy, WebhookSettings, webhooks_group

    retry: dict[str, object] = {}
    if args.max_attempts is not None:
        retry["max_attempts"] = args.max_attempts
    if args.retry_base_seconds is not None:
        retry["base_delay_s"] = args.retry_base_seconds
    fields: dict[str, object] = {"group_id": webhooks_group(args.app_id), "retry": RetryPolicy.model_validate(retry)}
    if args.per_destination is not None:
        fields["per_destination"] = args.per_destination
    return WebhookSettings.model_validate(fields)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, ferry_level=logging.INFO)
    bootstrap = resolve_broker(args)
    return asyncio.run(_serve(args, bootstrap))


async def _serve(args: argparse.Namespace, bootstrap: str) -> int:
    from app.connectors.services import prepare_connectors
    from app.project import load_project
    from app.streams import TopicNames

    project = load_project(args.project)
    names = TopicNames(args.topic_prefix)
    settings = _settings(args)
    services = await prepare_connectors(
        project, names, bootstrap, args.app_id, webhooks=settings, replication=args.replication
    )
    webhooks, feeder, inbound, triggers = services.webhooks, services.feeder, services.inbound, services.triggers
    assert webhooks is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await webhooks.start()
    log.info("webhooks: delivering %s in group %s (DLQ %s)", names.results, settings.group_id, names.webhooks_dlq)
    try:
        if feeder is not None:
            await feeder.start()
            log.info("sinks: feeding %s from %s", ", ".join(feeder.topics), names.results)
        if inbound is not None:
            await inbound.start()
            try:  # a new group starts at the topics' end: say when that end is fixed
                await inbound.wait_ready()
            except TimeoutError:
                log.warning("inbound: no partitions assigned yet; records before that may be skipped")
            log.info("inbound: records of %s run %s", ", ".join(inbound.topics), ", ".join(inbound.agents))
        if triggers is not None:
            await triggers.start()
            log.info("triggers: %s", triggers.describe())
        await stop.wait()
    finally:
        if triggers is not None:
            await triggers.stop()
        if inbound is not None:
            await inbound.stop()
        if feeder is not None:
            await feeder.stop()
        await webhooks.stop()
    log.info("webhooks: stopped (%d delivered, %d to the DLQ)", webhooks.stats.delivered, webhooks.stats.dead_lettered)
    return 0


def _apply(args: argparse.Namespace) -> int:
    from app.connectors.sinks import ConnectClient, apply_connectors
    from app.project import KafkaConnectSpec, load_project
    from app.streams import TopicNames

    project = load_project(args.project)
    specs = [spec for spec in project.connectors.values() if isinstance(spec, KafkaConnectSpec)]
    if not specs:
        print("no Kafka Connect connectors in connectors/")
        return 0
    states = apply_connectors(ConnectClient(args.connect_url), specs, TopicNames(args.topic_prefix), wait_s=args.wait)
    for state in states:
        print(state.line())
    return 0 if all(state.ok for state in states) else 1


def _replay(args: argparse.Namespace) -> int:
    from app.connectors.webhook import destinations_for, replay_dead_letters, replay_group
    from app.project import load_project
    from app.streams import TopicNames

    configure_logging(args.log_format)
    if args.limit is not None and args.limit < 1:
        print("ferry: error: --limit must be at least 1", file=sys.stderr)
        return 2
    bootstrap = resolve_broker(args)
    project = load_project(args.project)
    settings = _settings(args)
    report = asyncio.run(
        replay_dead_letters(
            bootstrap,
            TopicNames(args.topic_prefix),
            destinations_for(project, settings),
            replay_group(args.app_id),
            limit=args.limit,
            settings=settings,
        )
    )
    print(f"replayed {report.delivered + report.failed}: {report.delivered} delivered, {report.failed} back in the DLQ")
    if report.unreadable:
        print(f"ferry: {report.unreadable} DLQ records were no webhook entries and were skipped", file=sys.stderr)
    return 0 if report.failed == 0 else 1
