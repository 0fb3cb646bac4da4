"""`ferry submit AGENT --input JSON|@file [--wait]`: produce one run request (and await its result).

`--input @file.json` reads JSON; `@file` of any other type (a PDF, a scan) is sent as a
document, `{"files": [{name, mime_type, data}]}`. `--key` sets the Kafka record key
(default: the agent's concurrency key value, else the run id); `--idempotency-key`
makes the run id deterministic, so submitting twice is one run; with `--wait`, a run of
that key that already finished prints its result at once (read back from `runs.results`,
compacted by run id) instead of waiting for a new one. A `TRACEPARENT` (and
`TRACESTATE`) in the environment, as OpenTelemetry passes trace context to a process,
makes the run part of that trace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from app.cli.run_input import InputError, read_input
from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, resolve_broker


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("submit", help="submit a run request to an agent's topic")
    parser.add_argument("agent", help="agent or pipeline name")
    parser.add_argument("--input", required=True, help="JSON text, or @file (JSON, or a document to attach)")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--key", default=None, help="Kafka record key (default: concurrency key, else run id)")
    parser.add_argument("--idempotency-key", default=None, help="same key, same run id")
    parser.add_argument("--deployment", default=None, help="run on this deployment version, not the active one")
    parser.add_argument("--wait", action="store_true", help="wait for the result and print it")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait with --wait")
    add_stream_options(parser)
    parser.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    """Exit 0 submitted (with --wait: completed), 1 the run did not complete, 2 user error."""
    from app.project import load_project
    from app.streams.bindings import check_agents

    try:
        payload = read_input(args.input)
    except InputError as exc:
        print(f"ferry: error: {exc}", file=sys.stderr)
        return 2
    project = load_project(args.project)
    check_agents(project, [args.agent])
    bootstrap = resolve_broker(args)
    return asyncio.run(_send(args, bootstrap, project, payload))


async def _send(args: argparse.Namespace, bootstrap: str, project: Any, payload: Any) -> int:
    from app.contracts import RunRequest, RunStatus
    from app.contracts.trace_context import TraceContext
    from app.streams import ResultWatcher, Submitter, TopicNames
    from app.streams.connect import topic_partitions

    names = TopicNames(args.topic_prefix)
    trace = TraceContext.parse(os.environ.get("TRACEPARENT"), os.environ.get("TRACESTATE"))
    request = RunRequest.new(
        args.agent,
        payload,
        tenant=args.tenant,
        idempotency_key=args.idempotency_key,
        trigger={"source": "cli"},
        deployment=args.deployment,
    )
    # A missing topic is a setup error to say at once (the producer would wait 60 s for it).
    await topic_partitions(bootstrap, names.request(args.agent))
    async with Submitter(bootstrap, project, names) as submitter:
        if not args.wait:
            await submitter.submit(request, key=args.key, trace=trace)
            print(request.run_id)
            return 0
        # A keyed run may have finished already: read its result back from the start of
        # runs.results (the watcher then follows new results, so nothing slips by).
        keyed = args.idempotency_key is not None
        async with ResultWatcher(bootstrap, names, from_beginning=keyed, only=[request.run_id]) as watcher:
            if keyed:
                await watcher.read_to_end(timeout=args.timeout)
            if request.run_id in watcher.results:
                print(f"ferry: run {request.run_id} had already finished", file=sys.stderr)
                results = dict(watcher.results)
            else:
                await submitter.submit(request, key=args.key, trace=trace)
                print(f"ferry: submitted run {request.run_id}; waiting for its result…", file=sys.stderr)
                results = await watcher.wait_for([request.run_id], timeout=args.timeout)
    result = results.get(request.run_id)
    if result is None:
        print(
            f"ferry: no result for {request.run_id} within {args.timeout:g}s (is a worker running? `ferry worker`)",
            file=sys.stderr,
        )
        return 1
    print(result.model_dump_json(indent=2))
    return 0 if result.status == RunStatus.COMPLETED else 1
