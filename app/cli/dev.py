"""`ferry dev up | down | status`: the local stack of real services for dev, demos and tests."""

from __future__ import annotations

import argparse
import os
import sys

from app.devstack.errors import DevStackError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("dev", help="start, stop or inspect the local dev stack")
    parser.add_argument("--home", help="state, data and logs folder (default: $FERRY_HOME or .ferry/dev)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("up", help="start Kafka, PostgreSQL and Kafka Connect")
    up.add_argument("--only", help="comma-separated subset of: kafka,postgres,connect")
    up.add_argument("--kafka-port", type=int, help="default: a free port")
    up.add_argument("--postgres-port", type=int, help="default: a free port")
    up.add_argument("--connect-port", type=int, help="default: a free port")
    up.set_defaults(handler=_up)
    actions.add_parser("down", help="stop every service of the stack").set_defaults(handler=_down)
    actions.add_parser("status", help="show each service, its address and pid").set_defaults(handler=_status)


def _stack(args: argparse.Namespace):
    from pathlib import Path

    from app.devstack.stack import DevStack, default_home

    return DevStack(Path(args.home) if args.home else default_home())


def _say(message: str) -> None:
    print(f"ferry: {message}", file=sys.stderr)


def _up(args: argparse.Namespace) -> int:
    from app.devstack.stack import SERVICES, PortRequest

    services = args.only.split(",") if args.only else list(SERVICES)
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        _say(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
        return 2
    if os.environ.get("FERRY_BROKER") and "kafka" in services:
        _say(f"FERRY_BROKER={os.environ['FERRY_BROKER']} is set: using that broker, not starting one")
        services.remove("kafka")
    stack = _stack(args)
    ports = PortRequest(kafka=args.kafka_port, postgres=args.postgres_port, connect=args.connect_port)
    try:
        stack.up(services, ports, progress=_say)
    except DevStackError as exc:
        _say(f"error: {exc}")
        return 1
    _print_status(stack)
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = _stack(args)
    stack.down(progress=_say)
    _say("stack stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    return 0 if _print_status(_stack(args)) else 3


def _print_status(stack) -> bool:
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
