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
import json
import os
import sys
from typing import TYPE_CHECKING, TextIO

from app.cli.process_main import run_main
from app.cli.subparsers import Subparsers
from app.contracts.errors import ConfigError

if TYPE_CHECKING:
    from app.agent_tests import CaseReport, Collection


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the project's agent test suites (tests/<agent>.yaml)",
        description="Run the agent test suites of a project (Connic's tests/<agent>.yaml format) locally "
        "through the engine. Exit 0 all passed, 1 a test failed, 2 the suite could not run.",
    )
    parser.add_argument("path", nargs="?", default=".", help="project directory, or one suite file (default: .)")
    parser.add_argument(
        "--filter", metavar="PATTERN", help="only tests whose agent::name contains PATTERN (or matches it as a glob)"
    )
    parser.add_argument("--list", action="store_true", help="collect and print the tests without running them")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout (progress on stderr)")
    parser.add_argument(
        "--record",
        action="store_true",
        help="call the real model and (re)write each test's LLM cassette under tests/cassettes/",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from app.agent_tests import collect_tests

    collection = collect_tests(args.path, pattern=args.filter)  # a bad suite: one line, exit 2
    if args.list:
        _print_list(collection, as_json=args.json)
        return 0
    if not collection.cases:
        where = f" matching {args.filter!r}" if args.filter else ""
        raise ConfigError(f"no tests{where} in {collection.root / 'tests'} (the format: docs/testing.md)")
    if args.record or _some_case_lacks_a_cassette(collection):
        base_url = os.environ.get("FERRY_LLM_BASE_URL")
        if base_url:
            from app.cli.run import require_llm_server

            require_llm_server(base_url)
    return run_main(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from app.agent_tests import arun_project_tests

    progress = sys.stderr if args.json else sys.stdout
    report = await arun_project_tests(
        args.path,
        pattern=args.filter,
        record=args.record,
        on_case=lambda case: _print_case(case, progress),
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    seconds = report.duration_ms / 1000
    summary = f"{report.passed} passed, {report.failed} failed, {report.errored} errored in {seconds:.1f}s"
    print(f"ferry: {summary}", file=progress)
    return report.exit_code()


def _some_case_lacks_a_cassette(collection: Collection) -> bool:
    from app.agent_tests.cassette import cassette_path

    return any(not cassette_path(collection.root, c.suite.key, c.name).is_file() for c in collection.cases)


_MARKS = {"passed": "PASS ", "failed": "FAIL ", "errored": "ERROR"}


def _print_case(case: CaseReport, stream: TextIO) -> None:
    cassette = {"replayed": "  cassette", "recorded": "  recorded"}.get(case.cassette.value, "")
    line = f"{_MARKS[case.status.value]} {case.id}  {case.successes}/{case.runs} runs  {case.duration_ms / 1000:.1f}s{cassette}"
    print(line, file=stream, flush=True)
    if case.failure_reason:
        print(f"      {case.failure_reason}", file=stream, flush=True)


def _print_list(collection: Collection, *, as_json: bool) -> None:
    from app.agent_tests.cassette import cassette_path

    rows = [
        {
            "agent_name": case.suite.agent,
            "test_name": case.name,
            "file": case.suite.rel,
            "line": case.line(),
            "runs": case.settings["runs"],
            "success_threshold": case.settings["success_threshold"],
            "timeout_s": case.settings["timeout_s"],
            "cassette": cassette_path(collection.root, case.suite.key, case.name).is_file(),
        }
        for case in collection.cases
    ]
    if as_json:
        print(json.dumps({"suites": len(collection.suites), "tests": rows}, indent=2))
        return
    for row in rows:
        cassette = "  (cassette)" if row["cassette"] else ""
        print(f"{row['file']}:{row['line']}  {row['agent_name']}::{row['test_name']}  runs={row['runs']}{cassette}")
    print(f"{len(rows)} test(s) in {len(collection.suites)} suite(s)")
