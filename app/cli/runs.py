"""`ferry runs`: recent runs from the history store, newest first, filtered.

Reads the store only (never Kafka), so it answers while workers run and after they stop.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.history import add_database_option, open_store
from app.cli.history_format import NOTHING, count, duration, money, parse_since, positive_int, table, when
from app.cli.subparsers import Subparsers
from app.contracts.errors import ErrorCategory
from app.contracts.runs import RunStatus

HEADERS = ("RUN ID", "AGENT", "STATUS", "TRIGGER", "STARTED (UTC)", "DURATION", "TOKENS", "COST", "ERROR")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list recent runs from the history store")
    parser.add_argument("--agent", help="only this agent (or pipeline)")
    parser.add_argument("--status", choices=[s.value for s in RunStatus], help="only runs that ended so")
    parser.add_argument("--tenant", help="only this tenant")
    parser.add_argument("--deployment", help="only runs served by this deployment version")
    parser.add_argument("--category", choices=[c.value for c in ErrorCategory], help="only runs failed so")
    parser.add_argument("--since", type=parse_since, help="started within (30m, 2h, 7d) or since an ISO time")
    parser.add_argument("--limit", type=positive_int, default=50, help="at most this many runs (default 50)")
    parser.add_argument("--json", action="store_true", help="one JSON array of runs, all fields")
    add_database_option(parser)
    parser.set_defaults(handler=_runs)


def _runs(args: argparse.Namespace) -> int:
    from app.observability.history import RunFilter

    store = open_store(args)
    try:
        runs = store.runs(
            RunFilter(
                agent=args.agent,
                status=args.status,
                tenant=args.tenant,
                category=args.category,
                since=args.since,
                limit=args.limit,
                deployment=args.deployment,
            )
        )
    finally:
        store.close()
    if args.json:
        json.dump([run.model_dump(mode="json") for run in runs], sys.stdout, indent=2)
        print()
        return 0
    if not runs:
        print("no runs match", file=sys.stderr)
        return 0
    rows = [
        (
            run.run_id,
            _agent(run.agent, run.kind, run.pipeline, run.stage),
            run.status + (" (partial)" if run.partial else ""),
            run.trigger_source,
            when(run.started_at),
            duration(run.duration_ms),
            count(run.total_tokens),
            money(run.cost_usd),
            run.error_category or NOTHING,
        )
        for run in runs
    ]
    print("\n".join(table(HEADERS, rows, right=frozenset({5, 6, 7}))))
    return 0


def _agent(agent: str, kind: str, pipeline: str | None, stage: int | None) -> str:
    if kind == "pipeline":
        return f"{agent} (pipeline)"
    if kind == "stage":
        return f"{agent} ({pipeline} #{stage})"
    return agent
