"""The `ferry` command: a thin dispatcher over one module per sub-command.

Each module in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its parser
and sets `handler(args) -> int` as the default. Modules import their heavy dependencies
(litellm, faust) inside their handlers so that `ferry --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "app.cli.run",
    "app.cli.lint",
    "app.cli.dev",
    "app.cli.demo",
    "app.cli.worker",
    "app.cli.submit",
    "app.cli.topics",
    "app.cli.runs",
    "app.cli.trace",
    "app.cli.usage",
    "app.cli.history",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferry", description="Run LLM agents in production on Apache Kafka.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
