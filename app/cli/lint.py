"""`ferry lint [PATH]`: check an agent project without running anything.

Exit codes: 0 no errors (warnings allowed), 1 errors, 2 the path is not a readable
project. `--json` prints one JSON document for CI annotations and editors.
"""

from __future__ import annotations

import argparse
import json

from app.cli.subparsers import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check an agent project",
        description="Check an agent project: agents, tools, schemas, "
        "topics, connectors and ferry.yaml. Exit 0 ok, 1 errors, 2 not a readable project.",
    )
    parser.add_argument("path", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from app.project import format_problem, lint_project

    report = lint_project(args.path)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for problem in report.problems:
            print(format_problem(problem))
        if report.readable:
            summary = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
            agents = f"; {len(report.project.agents)} agent(s) OK" if report.project else ""
            print(f"{args.path}: {summary}{agents}")
    if not report.readable:
        return 2
    return 1 if report.errors else 0
