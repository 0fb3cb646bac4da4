"""`ferry trace RUN_ID`: one run's steps as a tree, from the history store.

RUN_ID may be a unique prefix (as with git). A pipeline's run shows every stage run
under it. Unknown or ambiguous ids are one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.history import add_database_option, open_store
from app.cli.subparsers import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("trace", help="show one run's steps (LLM calls, retries, tools) as a tree")
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    parser.add_argument("--json", action="store_true", help="the tree as JSON: run, spans with children, stages")
    add_database_option(parser)
    parser.set_defaults(handler=_trace)


def _trace(args: argparse.Namespace) -> int:
    from app.cli.history_format import Paint
    from app.cli.trace_view import render_trace
    from app.contracts.errors import BadInputError
    from app.observability.history.trace_tree import load_trace

    run_id = args.run_id.strip()
    if not run_id:
        raise BadInputError("RUN_ID is empty")
    store = open_store(args)
    where = store.describe()
    try:
        trace = load_trace(store, run_id)  # AmbiguousRunId is a BadInputError: one line, exit 2
    finally:
        store.close()
    if trace is None:
        raise BadInputError(f"no run {run_id!r} in the run history ({where})")
    if args.json:
        json.dump(trace.as_json(), sys.stdout, indent=2)
        print()
        return 0
    print("\n".join(render_trace(trace, Paint(sys.stdout))))
    return 0
