"""The gate of `ferry deploy`: lint, then the project's tests, on the very files being deployed.

The candidate's files (and its `tests/`) are written to a scratch directory and checked
there, so what passes the gate is what gets published, whatever else is on disk.
`ferry test` lives in `app.agent_tests`; where this Ferry has none, the test step says
so and passes (lint still gates).
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.deploy.make import Candidate
from app.project import format_problem, lint_project

#: `run_project_tests(project_dir) -> report` of `ferry test` (report: `.ok`/`.passed`, `.summary`).
TESTS_ENTRY = ("app.agent_tests", "run_project_tests")


@dataclass(frozen=True)
class GateStep:
    name: str
    ok: bool
    lines: tuple[str, ...] = ()


TestRunner = Callable[[Path], GateStep]


def write_tree(candidate: Candidate, root: Path) -> Path:
    for rel, data in {**candidate.files, **candidate.gate_files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def lint_step(root: Path) -> GateStep:
    report = lint_project(root)
    lines = tuple(format_problem(p) for p in report.errors)
    return GateStep("lint", report.ok, lines or (f"{len(report.warnings)} warning(s), no errors",))


def project_tests_step(root: Path) -> GateStep:
    """`ferry test` on the tree, through its Python entry point when this Ferry has one."""
    module_name, function = TESTS_ENTRY
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return GateStep("tests", True, ("`ferry test` is not part of this Ferry: tests not run",))
    run: Callable[[Path], Any] = getattr(module, function)
    report = run(root)
    ok = bool(getattr(report, "ok", getattr(report, "passed", False)))
    summary = getattr(report, "summary", None)
    text = summary() if callable(summary) else summary
    return GateStep("tests", ok, (str(text),) if text else ())


def run_gate(candidate: Candidate, *, skip_tests: bool, tests: TestRunner = project_tests_step) -> list[GateStep]:
    """The steps run, in order; the first that fails ends the gate."""
    with tempfile.TemporaryDirectory(prefix=f"ferry-gate-{candidate.version}-") as scratch:
        root = write_tree(candidate, Path(scratch))
        steps = [lint_step(root)]
        if steps[-1].ok and not skip_tests:
            steps.append(tests(root))
        return steps
