"""`ferry cancel RUN_ID [--wait]`: ask the workers to cancel a run.

The cancel goes to `runs.cancellations`, which every worker reads: a queued run never
starts, a running one stops within about a second as `cancelled`, keeping the usage it
had so far. A pipeline's run id cancels whichever stage is queued or running. With
`--wait` the command first looks for the run's result (a run that already finished
cannot be cancelled: exit 1), then waits for the cancelled result and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, resolve_broker


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("cancel", help="cancel a queued or running run")
    parser.add_argument("run_id", help="the run's id (a pipeline's: its current stage is cancelled)")
    parser.add_argument("--wait", action="store_true", help="wait for the run's result and print it")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait")
    add_stream_options(parser)
    parser.set_defaults(handler=_cancel)


def _cancel(args: argparse.Namespace) -> int:
    """Exit 0 cancel requested (with --wait: the run ended cancelled), 1 it ended otherwise."""
    return asyncio.run(_send(args, resolve_broker(args)))


async def _send(args: argparse.Namespace, bootstrap: str) -> int:
    from app.contracts import RunStatus
    from app.streams import ResultWatcher, Submitter, TopicNames
    from app.streams.connect import topic_partitions

    names = TopicNames(args.topic_prefix)
    run_id: str = args.run_id
    # A missing topic is a setup error to say at once (the producer would wait 60 s for it).
    await topic_partitions(bootstrap, names.cancellations)
    async with Submitter(bootstrap, names=names) as submitter:
        if not args.wait:
            await submitter.cancel(run_id)
            print(f"ferry: cancel of run {run_id} requested", file=sys.stderr)
            return 0
        async with ResultWatcher(bootstrap, names, from_beginning=True, only=[run_id]) as watcher:
            await watcher.read_to_end(timeout=args.timeout)
            if run_id not in watcher.results:
                await submitter.cancel(run_id)
                print(f"ferry: cancel of run {run_id} requested; waiting for its result…", file=sys.stderr)
                await watcher.wait_for([run_id], timeout=args.timeout)
            elif watcher.results[run_id].status != RunStatus.CANCELLED:
                print(f"ferry: run {run_id} had already finished; nothing to cancel", file=sys.stderr)
    result = watcher.results.get(run_id)
    if result is None:
        print(
            f"ferry: no result for {run_id} within {args.timeout:g}s (is a worker running? `ferry worker`)",
            file=sys.stderr,
        )
        return 1
    print(result.model_dump_json(indent=2))
    return 0 if result.status == RunStatus.CANCELLED else 1
