"""`ferry usage`: tokens and cost from the history store, by agent, model, tenant or day.

Runs are summed without pipeline results (a pipeline's usage is its stages'); by model,
LLM calls are summed. Costs without a known price are counted, never guessed.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.history import add_database_option, open_store
from app.cli.history_format import count, money, parse_since, table
from app.cli.subparsers import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("usage", help="tokens and cost from the history store")
    parser.add_argument(
        "--by",
        choices=("agent", "model", "tenant", "day", "deployment"),
        default="agent",
        help="group by (default agent; deployment: compare a canary with the active version)",
    )
    parser.add_argument("--since", type=parse_since, help="started within (30m, 2h, 7d) or since an ISO time")
    parser.add_argument("--json", action="store_true", help="one JSON array of groups")
    add_database_option(parser)
    parser.set_defaults(handler=_usage)


def _usage(args: argparse.Namespace) -> int:
    from app.observability.history import UsageBy

    store = open_store(args)
    try:
        lines = store.usage(UsageBy(args.by), args.since)
    finally:
        store.close()
    if args.json:
        json.dump([line.model_dump(mode="json") for line in lines], sys.stdout, indent=2)
        print()
        return 0
    if not lines:
        print("no usage recorded" + (" in that period" if args.since else ""), file=sys.stderr)
        return 0
    unpriced = any(line.unpriced for line in lines)
    headers = [
        "DAY (UTC)" if args.by == "day" else args.by.upper(),
        "CALLS" if args.by == "model" else "RUNS",
        "TOKENS IN",
        "TOKENS OUT",
        "COST",
    ]
    if unpriced:
        headers.append("UNPRICED")
    rows = [
        _row(line.key, line.count, line.prompt_tokens, line.completion_tokens, line.cost_usd, line.unpriced, unpriced)
        for line in lines
    ]
    rows.append(
        _row(
            "total",
            sum(line.count for line in lines),
            sum(line.prompt_tokens for line in lines),
            sum(line.completion_tokens for line in lines),
            sum(line.cost_usd for line in lines),
            sum(line.unpriced for line in lines),
            unpriced,
        )
    )
    rendered = table(headers, rows, right=frozenset(range(1, len(headers))))
    width = max(len(line) for line in rendered)
    print("\n".join([*rendered[:-1], "─" * width, rendered[-1]]))
    if unpriced:
        print("UNPRICED: runs or calls whose model has no known price; COST leaves them out.", file=sys.stderr)
    return 0


def _row(
    key: str, runs: int, tokens_in: int, tokens_out: int, cost: float, unpriced: int, show_unpriced: bool
) -> list[str]:
    row = [key, count(runs), count(tokens_in), count(tokens_out), money(cost)]
    if show_unpriced:
        row.append(count(unpriced))
    return row
