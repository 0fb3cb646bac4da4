"""`ferry test [PATH]`: run the project's agent test suites (`tests/<agent>.yaml`) locally.

    ferry test                                 # every suite of the project in .
    ferry test --filter invoice-extractor::    # one agent's tests (substring, or a glob)
    ferry test --list                          # collect and print the tests, run nothing
    ferry test --record                        # run against the real model, store cassettes

Suites are Connic's test format, read with the models of connic-composer-sdk; runs go
through the engine in this process, no Kafka. LLM cassettes under `tests/cassettes/`
replay a test's model exchanges offline (docs/testing.md). Exit 0 all passed, 1 a test
failed, 2 the suite could not run (a bad file: one line with file and line).
"""

from __future__ import annotations

import argparse

from app.cli.subparsers import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the project's agent test suites (tests/<agent>.yaml)",
        description="Run the agent test suites of a project (Connic's tests/<agent>.yaml format) locally "
        "through the engine. Exit 0 all passed, 1 a test failed, 2 the suite could not run.",
    )
    parser.add_argument("path", nargs="?", default=".", help="project directory, or one suite file (default: .)")
    parser.add_argument("--filter", metavar="PATTERN", help="only tests whose agent::name contains PATTERN (or matches it as a glob)")
    parser.add_argument("--list", action="store_true", help="collect and print the tests without running them")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress on stderr)")
    parser.add_argument(
        "--record",
        action="store_true",
        help="call the real model and (re)write each test's LLM cassette under tests/cassettes/",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from app.cli.test_output import run_command

    return run_command(args)
