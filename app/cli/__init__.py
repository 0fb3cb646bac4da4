"""The `ferry` command: a thin dispatcher over one module per sub-command.

Each module in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its parser
and sets `handler(args) -> int` as the default. Modules import their heavy dependencies
(litellm, faust) inside their handlers so that `ferry --help` stays instant. A handler
returns 0 or 1 and raises a `FerryError` for anything else; `main` is the one place that
turns an escaping exception into a line on stderr and an exit code (see process_main).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from app.cli.process_main import EXIT_CODES_HELP, exit_code_for, exit_now, lingering_threads

COMMAND_MODULES: tuple[str, ...] = (
    "app.cli.run",
    "app.cli.lint",
    "app.cli.dev",
    "app.cli.demo",
    "app.cli.worker",
    "app.cli.submit",
    "app.cli.cancel",
    "app.cli.topics",
    "app.cli.runs",
    "app.cli.trace",
    "app.cli.usage",
    "app.cli.history",
    "app.cli.api",
    "app.cli.keys",
    "app.cli.connectors",
    "app.cli.approvals",
    "app.cli.deploy",
    "app.cli.deployments",
    "app.cli.test",
    "app.cli.replay",
    "app.cli.dlq",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Run LLM agents in production on Apache Kafka.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 here, argparse's way
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt as exc:
        code = exit_code_for(exc)
        if lingering_threads():
            exit_now(code)  # Ctrl-C means now, not after a stuck tool thread ends
        return code
    except Exception as exc:
        return exit_code_for(exc)


if __name__ == "__main__":
    sys.exit(main())
