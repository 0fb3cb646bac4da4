"""`ferry topics plan|apply`: the topics a project needs, and creating / checking them."""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.cli.broker import NO_BROKER
from app.cli.worker import add_stream_options, agents_of, resolve_broker


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("topics", help="plan or apply the project's Kafka topics")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, text in (
        ("plan", "print the topics and their settings"),
        ("apply", "create missing topics, report conflicting ones (exit 1)"),
    ):
        action = actions.add_parser(name, help=text)
        add_stream_options(action)
        action.set_defaults(handler=_topics)


def _topics(args: argparse.Namespace) -> int:
    from app.project import ProjectError, load_project
    from app.streams import TopicNames, apply_topics
    from app.streams.bindings import bindings_for, plan_for_bindings

    try:
        project = load_project(args.project)
        names = TopicNames(args.topic_prefix)
        plan = plan_for_bindings(project, names, bindings_for(project, names, agents_of(args)), args.replication)
    except (ProjectError, KeyError) as exc:
        print(f"ferry: error: {exc}", file=sys.stderr)
        return 1
    if args.action == "plan":
        for topic in plan:
            configs = " ".join(f"{k}={v}" for k, v in sorted(topic.configs.items()))
            print(f"{topic.name}  partitions={topic.partitions} replication={topic.replication} {configs}")
        return 0
    bootstrap = resolve_broker(args)
    if bootstrap is None:
        print(NO_BROKER, file=sys.stderr)
        return 1
    report = asyncio.run(apply_topics(bootstrap, plan))
    for name in report.created:
        print(f"created   {name}")
    for name in report.existing:
        print(f"exists    {name}")
    for conflict in report.conflicts:
        print(f"CONFLICT  {conflict}", file=sys.stderr)
    return 0 if report.ok else 1
