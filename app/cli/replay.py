"""`ferry replay RUN_ID [--deployment V] [--wait]`: run a finished run's request again.

The replay is a new run (new run id) of the same agent, input, tenant and context,
linked to the original through its trigger (`source: replay`, `metadata.replay_of`),
pinned to `--deployment V` when given (else the active version). The original request is
read back from Kafka: the run's result (`runs.results`) says its agent and when it ran,
and the agent's request topic is read from shortly before that (docs/streams.md
"Replaying runs"). A pipeline's stage cannot be replayed alone: replay the pipeline's run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, resolve_broker

if TYPE_CHECKING:
    from app.project.project import Project


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("replay", help="run a finished run's request again, as a new linked run")
    parser.add_argument("run_id", help="the finished run's id")
    parser.add_argument("--deployment", default=None, help="run it on this deployment version (default: the active)")
    parser.add_argument("--wait", action="store_true", help="wait for the new run's result and print it")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to look for the run, and to wait")
    add_stream_options(parser)
    parser.set_defaults(handler=_replay)


def project_if_any(path: str) -> Project | None:
    """The project, when the command runs in one: its agents' concurrency keys key the
    replayed records; elsewhere they are keyed by run id (not serialised by key)."""
    from app.contracts.errors import ConfigError
    from app.project import load_project

    try:
        return load_project(path)
    except ConfigError:
        return None


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 replay produced (with --wait: it completed), 1 it did not complete, 2 no such run."""
    return asyncio.run(_run(args, resolve_broker(args)))


async def _run(args: argparse.Namespace, bootstrap: str) -> int:
    from app.contracts import RunStatus
    from app.contracts.errors import BadInputError
    from app.streams import ResultWatcher, Submitter, TopicNames
    from app.streams.replay import find_request, replay_of, request_topic_of

    names = TopicNames(args.topic_prefix)
    run_id: str = args.run_id
    async with ResultWatcher(bootstrap, names, from_beginning=True, only=[run_id]) as finished:
        await finished.read_to_end(timeout=args.timeout)
    original = finished.results.get(run_id)
    if original is None:
        raise BadInputError(f"no finished run {run_id} in {names.results} — fix: check the id (`ferry runs`)")
    topic = request_topic_of(names, original)
    request = await find_request(bootstrap, topic, original, timeout=args.timeout)
    if request is None:
        raise BadInputError(
            f"the request of run {run_id} is no longer on {topic} (past the topic's retention?): nothing to replay"
        )
    replay = replay_of(request, deployment=args.deployment, via="ferry replay")
    project = project_if_any(args.project)  # the agent's concurrency key keys the record, as for any submit
    async with ResultWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
        await submitter.submit(replay)
        where = f" on deployment {args.deployment}" if args.deployment else ""
        print(f"ferry: run {run_id} replayed as run {replay.run_id}{where}", file=sys.stderr)
        if not args.wait:
            print(replay.run_id)
            return 0
        results = await watcher.wait_for([replay.run_id], timeout=args.timeout)
    result = results.get(replay.run_id)
    if result is None:
        print(f"ferry: no result for {replay.run_id} within {args.timeout:g}s (is a worker running?)", file=sys.stderr)
        return 1
    print(result.model_dump_json(indent=2))
    return 0 if result.status == RunStatus.COMPLETED else 1
