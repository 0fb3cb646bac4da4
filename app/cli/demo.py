"""`ferry demo`: the main job of `make run`, on the stack `ferry dev up` started."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="run the demo job on the local dev stack")
    parser.set_defaults(handler=_demo)


def broker_address() -> str | None:
    """FERRY_BROKER when set, else the broker of the dev stack in $FERRY_HOME / .ferry/dev."""
    external = os.environ.get("FERRY_BROKER")
    if external:
        return external.removeprefix("kafka://")
    from app.devstack.stack import DevStack, default_home

    kafka = DevStack(default_home()).running().get("kafka")
    return kafka.address if kafka else None


def _demo(args: argparse.Namespace) -> int:
    from app.devstack.smoke import broker_round_trip

    bootstrap = broker_address()
    if bootstrap is None:
        print("ferry: error: no broker — fix: run `ferry dev up` or set FERRY_BROKER", file=sys.stderr)
        return 1
    report = asyncio.run(broker_round_trip(bootstrap))
    print(
        f"ferry: broker round trip via {bootstrap}: {report.received}/{report.sent} run requests "
        f"came back in {report.seconds:.2f}s"
    )
    return 0 if report.received == report.sent else 1
