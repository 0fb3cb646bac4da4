"""`ferry approvals [list] | approve RUN_ID | reject RUN_ID --reason`: runs waiting for a human.

A run whose agent's `approval:` block gates a tool call parks on `ferry.approvals` when
it reaches that call (it holds no worker slot while it waits). `list` shows what waits,
oldest first: the run, its agent and tenant, the tool and its arguments (secrets
masked), and when the request expires (then it counts as rejected). `approve` and
`reject` decide: the run goes back to its agent's topic with the decision and any worker
resumes it, replaying the steps it had done. A unique prefix of a run id is enough.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.cli.subparsers import Subparsers
from app.cli.worker import add_stream_options, resolve_broker
from app.contracts.errors import BadInputError, ConfigError, ServiceUnreachableError

if TYPE_CHECKING:
    from app.contracts import ApprovalRecord
    from app.streams.approvals import ApprovalBook


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("approvals", help="runs waiting for a human to approve a tool call")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="what waits (the default)")
    listing.add_argument("--tenant", default=None, help="only this tenant's")
    listing.add_argument("--json", action="store_true", help="one JSON object per waiting run")
    for name, help_text in (("approve", "let the tool call run"), ("reject", "refuse the tool call")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("run_id", help="the run's id, or a unique prefix of it")
        action.add_argument("--reason", required=name == "reject", default=None, help="why (the model may see it)")
        action.add_argument("--by", default=None, help="who decides (default: your user name)")
        _stream_options_after(action)
    _stream_options_after(listing)
    add_stream_options(parser)
    parser.set_defaults(handler=_handle, action=None, tenant=None, json=False)


def _stream_options_after(action: argparse.ArgumentParser) -> None:
    """The stream options also after the action (`ferry approvals list --broker B`), without
    their defaults overwriting what was given before it (argparse copies a subparser's
    defaults over the parent's values)."""
    add_stream_options(action)
    for option in action._actions:
        if option.dest in {"project", "agents", "broker", "app_id", "topic_prefix", "replication"}:
            option.default = argparse.SUPPRESS


def _handle(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args, resolve_broker(args)))


async def _run(args: argparse.Namespace, bootstrap: str) -> int:
    from app.streams import TopicNames
    from app.streams.approvals import ApprovalBook, ApprovalDesk
    from app.streams.connect import topic_partitions

    names = TopicNames(args.topic_prefix)
    try:
        await topic_partitions(bootstrap, names.approvals)
    except ServiceUnreachableError:
        raise
    except ConfigError:  # no worker ever ran here: nothing can be waiting
        if args.action in (None, "list"):
            print(f"no run is waiting for an approval ({names.approvals} does not exist yet)", file=sys.stderr)
            return 0
        raise BadInputError(f"no run {args.run_id!r} is waiting for an approval") from None
    book = ApprovalBook(bootstrap, names)
    await book.start()
    try:
        if args.action in (None, "list"):
            _print(book, args.tenant, args.json)
            return 0
        [record] = _matching(book, args.run_id)
        desk = ApprovalDesk(bootstrap, names)
        await desk.start()
        try:
            approved = args.action == "approve"
            by = args.by or getpass.getuser()
            decided = await desk.decide(record, approved=approved, by=by, reason=args.reason)
        finally:
            await desk.stop()
    finally:
        await book.stop()
    print(f"ferry: run {decided.run_id} {decided.status} ({decided.tool}); a worker resumes it", file=sys.stderr)
    return 0


def _matching(book: ApprovalBook, prefix: str) -> list[ApprovalRecord]:
    waiting = [r for r in book.pending() if r.run_id.startswith(prefix)]
    if not waiting:
        known = book.records.get(prefix)
        state = f" (it was {known.status})" if known is not None else ""
        raise BadInputError(f"no run {prefix!r} is waiting for an approval{state} — `ferry approvals` lists them")
    if len(waiting) > 1:
        raise BadInputError(f"{prefix!r} matches {len(waiting)} waiting runs; give more of the run id")
    return waiting


def _print(book: ApprovalBook, tenant: str | None, as_json: bool) -> None:
    waiting = book.pending(tenant)
    if as_json:
        for record in waiting:
            print(record.model_dump_json(exclude={"request"}))
        return
    if not waiting:
        print("no run is waiting for an approval", file=sys.stderr)
        return
    now = datetime.now(UTC)
    print(f"{'RUN':<36}  {'AGENT':<20} {'TENANT':<12} {'TOOL':<20} {'EXPIRES IN':>10}  ARGUMENTS")
    for r in waiting:
        left = max(0, int((r.expires_at - now).total_seconds()))
        arguments = json.dumps(r.arguments, ensure_ascii=False)
        arguments = arguments if len(arguments) <= 60 else arguments[:57] + "..."
        print(f"{r.run_id:<36}  {r.agent:<20} {r.tenant:<12} {r.tool:<20} {left:>9}s  {arguments}")
        if r.message:
            print(f"{'':<36}  {r.message}")
