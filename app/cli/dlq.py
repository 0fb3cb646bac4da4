"""`ferry dlq list|show|replay`: what failed, why, and running it again.

Two kinds of entries (docs/streams.md "Replaying runs"):

- dead letters on `runs.dlq`: records that never became a run (`bad_input`: not JSON,
  not a run request…), with their original bytes;
- failed runs on each agent's `agent.<name>.failed`: runs that ended failed with a
  category listed in ferry.yaml `durability.agents.<name>.failed_runs`.

    ferry dlq list   [--agent A] [--category C] [--since 2h]
    ferry dlq show   REF                       # a run id, or topic:partition:offset
    ferry dlq replay [--agent A] [--category C] [--since 2h] [--deployment V] [--dry-run]

`replay` produces each selected entry's request again as a new run linked to the
original (`trigger.source: replay`, `metadata.replay_of`); its run id is derived from
the original's and the deployment, so replaying the same selection twice runs each
failure once. A dead letter whose bytes are still no valid run request is reported and
skipped. `--dry-run` prints what would be replayed and produces nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from app.cli.history_format import parse_since, table, when
from app.cli.replay import project_if_any
from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, resolve_broker
from app.contracts.errors import ErrorCategory

if TYPE_CHECKING:
    from app.project.project import Project
    from app.streams import TopicNames
    from app.streams.replay import Entry


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("dlq", help="list, show and replay dead letters and failed runs")
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="dead letters and failed runs, oldest first")
    _add_filters(listing)
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one entry in full (JSON)")
    show.add_argument("ref", help="a run id, or topic:partition:offset for a record without one")
    _add_filters(show)
    show.set_defaults(handler=_show)
    replay = actions.add_parser("replay", help="run the selected entries again, as new linked runs")
    _add_filters(replay)
    replay.add_argument("--deployment", default=None, help="run them on this deployment version (default: the active)")
    replay.add_argument("--dry-run", action="store_true", help="print what would be replayed; produce nothing")
    replay.set_defaults(handler=_replay)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", default=None, help="only this agent's entries")
    parser.add_argument(
        "--category", type=ErrorCategory, default=None, help="only this error category (bad_input, llm_unavailable…)"
    )
    parser.add_argument("--since", type=parse_since, default=None, help="within (30m, 2h, 7d) or since an ISO time")
    add_stream_options(parser)


def _list(args: argparse.Namespace) -> int:
    entries, _ = asyncio.run(_entries(args, resolve_broker(args)))
    if not entries:
        print("ferry: no dead letters or failed runs match", file=sys.stderr)
        return 0
    rows = [[when(e.at), e.agent or "?", e.ref, e.category, _clip(e.reason, 70)] for e in entries]
    print("\n".join(table(["when", "agent", "run / record", "category", "reason"], rows)))
    return 0


def _show(args: argparse.Namespace) -> int:
    entries, _ = asyncio.run(_entries(args, resolve_broker(args)))
    found = [e for e in entries if e.ref == args.ref or e.run_id == args.ref]
    if not found:
        print(f"ferry: no dead letter or failed run {args.ref!r} matches", file=sys.stderr)
        return 1
    print(json.dumps([e.as_json() for e in found] if len(found) > 1 else found[0].as_json(), indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 every selected entry was replayed (or would be), 1 some could not be."""
    return asyncio.run(_replay_entries(args, resolve_broker(args)))


async def _replay_entries(args: argparse.Namespace, bootstrap: str) -> int:
    from app.streams import Submitter
    from app.streams.replay import replay_of, stable_replay_id

    entries, names = await _entries(args, bootstrap)
    if not entries:
        print("ferry: no dead letters or failed runs match: nothing to replay", file=sys.stderr)
        return 0
    skipped = 0
    project = project_if_any(args.project)
    async with Submitter(bootstrap, project, names) as submitter:
        for entry in entries:
            request = entry.replayable()
            if isinstance(request, str):
                skipped += 1
                print(f"skip    {entry.ref}: {request}")
                continue
            replay = replay_of(
                request,
                deployment=args.deployment,
                run_id=stable_replay_id(request.run_id, args.deployment),
                via="ferry dlq replay",
            )
            target = f" on {args.deployment}" if args.deployment else ""
            if args.dry_run:
                print(f"would   {entry.ref} ({request.agent}, {entry.category}) as {replay.run_id}{target}")
                continue
            await submitter.submit(replay)
            print(f"replay  {entry.ref} ({request.agent}, {entry.category}) as {replay.run_id}{target}")
    verb = "would replay" if args.dry_run else "replayed"
    print(f"ferry: {verb} {len(entries) - skipped} of {len(entries)}; {skipped} skipped", file=sys.stderr)
    return 1 if skipped else 0


async def _entries(args: argparse.Namespace, bootstrap: str) -> tuple[list[Entry], TopicNames]:
    from app.contracts.errors import BadInputError, ConfigError
    from app.streams import TopicNames
    from app.streams.connect import topic_partitions
    from app.streams.replay import dead_letters, failed_runs, failed_topic

    names = TopicNames(args.topic_prefix)
    since: datetime | None = args.since
    entries = await dead_letters(bootstrap, names, since=since)
    project = project_if_any(args.project)
    agents = [args.agent] if args.agent else _agents_keeping_failures(project)
    if args.agent and project is not None and args.agent not in project.agents:
        raise BadInputError(f"no agent {args.agent!r} in {project.root} — fix: one of {', '.join(project.agents)}")
    for agent in agents:
        try:
            await topic_partitions(bootstrap, failed_topic(names, agent))
        except ConfigError:
            continue  # no run of it ever failed that way: the topic is made on first use
        entries.extend(await failed_runs(bootstrap, names, agent, since=since))
    selected = [
        e
        for e in entries
        if (args.agent is None or e.agent == args.agent)
        and (args.category is None or e.category == args.category.value)
        and (since is None or e.at >= since)
    ]
    return sorted(selected, key=lambda e: e.at), names


def _agents_keeping_failures(project: Project | None) -> list[str]:
    if project is None:
        return []
    durability = project.config.durability
    return sorted(name for name in project.agents if durability.failed_runs_for(name))


def _clip(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
