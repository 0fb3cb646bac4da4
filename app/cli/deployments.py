"""`ferry deployments`, `ferry activate VERSION [--canary PCT]`, `ferry rollback`.

All three read `ferry.deployments` whole; the last two write one record, the active
state, and return once the broker has it (workers switch within about a second, see
docs/deployments.md). A version may be given by a unique prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from app.cli.deploy import add_deploy_options
from app.cli.history import add_database_option
from app.cli.subparsers import Subparsers

if TYPE_CHECKING:
    from app.deploy.log import Book

HEADERS = ("VERSION", "CREATED (UTC)", "COMMIT", "MESSAGE", "STATE", "RUNS")


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"a canary serves more than 0 and less than 100 %, not {text}")
    return value


def register(subparsers: Subparsers) -> None:
    listing = subparsers.add_parser("deployments", help="list deployments: which is active, canary, runs served")
    listing.add_argument("--json", action="store_true", help="one JSON array, newest first")
    add_database_option(listing)
    add_deploy_options(listing)
    listing.set_defaults(handler=_list)

    activate = subparsers.add_parser("activate", help="make a deployment active (or a canary with --canary PCT)")
    activate.add_argument("version", help="a version from `ferry deployments` (or a unique prefix)")
    activate.add_argument("--canary", type=_percent, default=None, help="send PCT %% of new runs to it, the rest stay")
    add_deploy_options(activate)
    activate.set_defaults(handler=_activate)

    rollback = subparsers.add_parser("rollback", help="make the previously active deployment active again")
    add_deploy_options(rollback)
    rollback.set_defaults(handler=_rollback)


def _list(args: argparse.Namespace) -> int:
    from app.cli.broker import require_broker

    book = asyncio.run(_read(args, require_broker(args.broker)))
    served = _runs_served(args)
    state = book.state
    rows = []
    for deployment in sorted(book.deployments.values(), key=lambda d: d.created_at, reverse=True):
        role = ""
        if deployment.version == state.active:
            role = "active"
        elif state.canary is not None and deployment.version == state.canary.version:
            role = f"canary {state.canary.percent:g}%"
        elif state.previous and deployment.version == state.previous[-1]:
            role = "previous"
        rows.append(
            {
                "version": deployment.version,
                "created_at": deployment.created_at.isoformat(),
                "commit": deployment.git.commit if deployment.git else None,
                "author": deployment.git.author if deployment.git else None,
                "message": deployment.message,
                "dirty": deployment.dirty,
                "state": role,
                "runs": served.get(deployment.version) if served is not None else None,
            }
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("no deployments yet (`ferry deploy`)", file=sys.stderr)
        return 0
    from app.cli.history_format import table

    lines: list[list[str]] = [
        [
            str(r["version"]),
            str(r["created_at"])[:19].replace("T", " "),
            (str(r["commit"])[:10] + ("+dirty" if r["dirty"] else ""))
            if r["commit"]
            else ("dirty" if r["dirty"] else "-"),
            _short(str(r["message"])),
            str(r["state"]) or "-",
            "-" if r["runs"] is None else str(r["runs"]),
        ]
        for r in rows
    ]
    print("\n".join(table(HEADERS, lines, right=frozenset({5}))))
    return 0


def _short(text: str, width: int = 40) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _runs_served(args: argparse.Namespace) -> Mapping[str, int] | None:
    """Runs per deployment from the history store (None: no store to ask)."""
    from app.cli.history import open_store
    from app.contracts.errors import FerryError
    from app.observability.history import UsageBy

    try:
        store = open_store(args)
    except FerryError:
        return None
    try:
        return {line.key: line.count for line in store.usage(UsageBy.DEPLOYMENT)}
    finally:
        store.close()


async def _read(args: argparse.Namespace, bootstrap: str) -> Book:
    from app.deploy.log import DeploymentLog
    from app.streams.naming import TopicNames

    async with DeploymentLog(bootstrap, TopicNames(args.topic_prefix), args.replication) as deployments:
        return await deployments.read()


def _activate(args: argparse.Namespace) -> int:
    from app.cli.broker import require_broker

    return asyncio.run(_change(args, require_broker(args.broker), rollback=False))


def _rollback(args: argparse.Namespace) -> int:
    from app.cli.broker import require_broker

    return asyncio.run(_change(args, require_broker(args.broker), rollback=True))


async def _change(args: argparse.Namespace, bootstrap: str, *, rollback: bool) -> int:
    from app.deploy.errors import DeploymentError
    from app.deploy.log import DeploymentLog
    from app.streams.naming import TopicNames

    async with DeploymentLog(bootstrap, TopicNames(args.topic_prefix), args.replication) as deployments:
        book = await deployments.read()
        state = book.state
        if rollback:
            after = state.rolled_back()
            if after is None:
                raise DeploymentError("nothing to roll back to: no deployment was active before this one")
            said = f"rolled back: {state.active} → {after.active}"
        else:
            version = book.get(args.version).version
            if args.canary is not None:
                if version == state.active:
                    raise DeploymentError(f"{version} is the active deployment: a canary is another version")
                after = state.with_canary(version, args.canary, reason="canary")
                said = f"{version} canary for {args.canary:g}% of new runs (the rest: {state.active})"
            else:
                after = state.activate(version, reason="activate")
                said = f"{version} active" + (f" (was {state.active})" if state.active else "")
        await deployments.set_state(after)
    print(f"ferry: {said}", file=sys.stderr)
    print(after.active or "")
    return 0
