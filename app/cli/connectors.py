"""`ferry connectors run` and `ferry webhooks replay`: the webhook connector on its own.

`connectors run` delivers `runs.results` to callback URLs and webhook connectors
(docs/webhooks.md) until SIGTERM / SIGINT, in the consumer group `<app-id>.webhooks`,
after creating the results and `webhooks.dlq` topics if missing. `webhooks replay` sends
the DLQ's entries again (exit 0 all delivered, 1 some back in the DLQ). Both exit 2 with
one line when the broker is unreachable or the project is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from app.cli.worker import add_stream_options, configure_logging, resolve_broker

if TYPE_CHECKING:
    from app.connectors.webhook import WebhookSettings

log = logging.getLogger("ferry.webhooks")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    connectors = subparsers.add_parser("connectors", help="run Ferry's outbound connectors")
    actions = connectors.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    run = actions.add_parser("run", help="deliver run results to webhooks until stopped")
    _add_options(run)
    run.set_defaults(handler=_run)

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
    from app.connectors.webhook import WebhookConnector, destinations_for
    from app.project import load_project
    from app.streams import TopicNames, apply_topics
    from app.streams.topic_plan import plan_topics

    project = load_project(args.project)
    names = TopicNames(args.topic_prefix)
    own = {names.results, names.webhooks_dlq}
    await apply_topics(bootstrap, [t for t in plan_topics(project, names, (), args.replication) if t.name in own])
    settings = _settings(args)
    connector = WebhookConnector(bootstrap, names, destinations_for(project, settings), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await connector.start()
    log.info("webhooks: delivering %s in group %s (DLQ %s)", names.results, settings.group_id, names.webhooks_dlq)
    await stop.wait()
    await connector.stop()
    log.info(
        "webhooks: stopped (%d delivered, %d to the DLQ)", connector.stats.delivered, connector.stats.dead_lettered
    )
    return 0


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
