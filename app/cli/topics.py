"""`ferry topics plan|apply`: the topics a project needs, and creating / checking them.

`apply` prints one line per topic, naming it once: `created`, `exists`, or `CONFLICT`
with every setting that differs from its spec (on stderr). Exit 0 all topics as
specified, 1 a conflict (like `ferry lint` finding an error), 2 the command could not
run (no broker or an unreachable one, a broken project, an unknown agent).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, agents_of, resolve_broker

if TYPE_CHECKING:
    from app.streams.topic_admin import ApplyReport


def register(subparsers: Subparsers) -> None:
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
    from app.project import load_project
    from app.streams import TopicNames, apply_topics
    from app.streams.bindings import bindings_for, plan_for_bindings

    project = load_project(args.project)
    names = TopicNames(args.topic_prefix)
    plan = plan_for_bindings(project, names, bindings_for(project, names, agents_of(args)), args.replication)
    if args.action == "plan":
        for topic in plan:
            configs = " ".join(f"{k}={v}" for k, v in sorted(topic.configs.items()))
            print(f"{topic.name}  partitions={topic.partitions} replication={topic.replication} {configs}")
        return 0
    bootstrap = resolve_broker(args)
    report = asyncio.run(apply_topics(bootstrap, plan))
    for line, is_conflict in report_lines([t.name for t in plan], report):
        print(line, file=sys.stderr if is_conflict else sys.stdout)
    return 0 if report.ok else 1


def report_lines(order: Sequence[str], report: ApplyReport) -> list[tuple[str, bool]]:
    """One (line, is_conflict) per topic of `order`: each topic named once, its conflicts joined."""
    conflicts: dict[str, list[str]] = {}
    for conflict in report.conflicts:
        conflicts.setdefault(conflict.topic, []).append(
            f"{conflict.setting} is {conflict.actual}, spec wants {conflict.wanted} ({conflict.why})"
        )
    created = set(report.created)
    lines: list[tuple[str, bool]] = []
    for name in order:
        if name in conflicts:
            lines.append((f"CONFLICT  {name}: " + "; ".join(conflicts[name]), True))
        elif name in created:
            lines.append((f"created   {name}", False))
        else:
            lines.append((f"exists    {name}", False))
    return lines
