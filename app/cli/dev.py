"""`ferry dev up | down | status`: the local stack of real services for dev, demos and tests.

`ferry dev` with no action is the local loop (`app/cli/dev_loop.py`).

`--home` is accepted before or after the action (`ferry dev --home X up` and
`ferry dev up --home X`); the action's own wins when both are given.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from app.cli.dev_loop import add_loop_options, run_loop
from app.cli.subparsers import Subparsers

if TYPE_CHECKING:
    from app.devstack.stack import DevStack

_HOME_HELP = "state, data and logs folder (default: $FERRY_HOME or .ferry/dev)"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "dev", help="the local loop: a worker reloading on save (no ACTION); or start, stop, inspect the dev stack"
    )
    parser.add_argument("--home", default=None, help=_HOME_HELP)
    add_loop_options(parser)  # `ferry dev` alone: app/cli/dev_loop.py
    parser.set_defaults(handler=run_loop)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = False
    up = actions.add_parser("up", help="start Kafka, PostgreSQL and Kafka Connect")
    up.add_argument("--only", help="comma-separated subset of: kafka,postgres,connect")
    up.add_argument("--kafka-port", type=int, help="default: a free port")
    up.add_argument("--postgres-port", type=int, help="default: a free port")
    up.add_argument("--connect-port", type=int, help="default: a free port")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop every service of the stack")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="show each service, its address and pid (exit 1 unless all are up)")
    status.set_defaults(handler=_status)
    for action in (up, down, status):
        # SUPPRESS: without --home here, the group's value (or None) stays in place.
        action.add_argument("--home", default=argparse.SUPPRESS, help=_HOME_HELP)


def _stack(args: argparse.Namespace) -> DevStack:
    from app.devstack.stack import DevStack, resolve_home

    return DevStack(resolve_home(args.home))


def _say(message: str) -> None:
    print(f"ferry: {message}", file=sys.stderr)


def _up(args: argparse.Namespace) -> int:
    from app.devstack.errors import DevStackError
    from app.devstack.stack import SERVICES, PortRequest, resolve_home

    services = args.only.split(",") if args.only else list(SERVICES)
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise DevStackError(f"unknown service(s) {', '.join(unknown)}", f"choose --only from {', '.join(SERVICES)}")
    if os.environ.get("FERRY_BROKER") and "kafka" in services:
        _say(f"FERRY_BROKER={os.environ['FERRY_BROKER']} is set: using that broker, not starting one")
        services.remove("kafka")
    stack = _stack(args)
    ports = PortRequest(kafka=args.kafka_port, postgres=args.postgres_port, connect=args.connect_port)
    stack.up(services, ports, progress=_say)  # a DevStackError is a user error: main prints it, exit 2
    _print_status(stack)
    if stack.home != resolve_home(None).resolve():
        _say(f"not the default home: `export FERRY_HOME={stack.home}` lets every other command find this stack")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = _stack(args)
    if not stack.state().services:
        _say(f"no dev stack recorded in {stack.home}: nothing to stop")
        return 0
    stack.down(progress=_say)
    _say("stack stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    from app.devstack.stack import home_origin

    stack = _stack(args)
    all_up = _print_status(stack)
    if not stack.running():
        _say(
            f"no dev stack running in {stack.home} ({home_origin(args.home)}); "
            "for a stack started with --home DIR: `ferry dev status --home DIR` or FERRY_HOME=DIR"
        )
    return 0 if all_up else 1


def _print_status(stack: DevStack) -> bool:
    from app.devstack.process import is_alive
    from app.devstack.stack import SERVICES

    services = stack.state().services
    print(f"{'SERVICE':<10} {'STATE':<8} {'PID':>7}  {'ADDRESS':<45} LOG")
    all_up = True
    for name in SERVICES:
        info = services.get(name)
        if info is None:
            print(f"{name:<10} {'stopped':<8} {'-':>7}  {'-':<45} -")
            all_up = False
            continue
        alive = is_alive(info.pid)
        all_up = all_up and alive
        print(f"{name:<10} {'up' if alive else 'dead':<8} {info.pid:>7}  {info.address:<45} {info.log_path}")
    if os.environ.get("FERRY_BROKER"):
        print(f"{'broker':<10} {'external':<8} {'-':>7}  {os.environ['FERRY_BROKER']:<45} (FERRY_BROKER)")
    return all_up
