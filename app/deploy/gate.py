"""The gate of `ferry deploy`: lint, then the project's tests, on the very files being deployed.

The candidate's files (and its `tests/`) are written to a scratch directory and checked
there, so what passes the gate is what gets published, whatever else is on disk.
The test step is `ferry test` (`app.agent_tests.run_project_tests`): every case of
`tests/<agent>.yaml` must pass; with cassettes (`tests/cassettes/`) it needs no model key.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.contracts.errors import FerryError
from app.deploy.make import Candidate
from app.project import format_problem, lint_project


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
    """`ferry test` on the tree: every case must pass (a project with no case passes, said so)."""
    from app.agent_tests import run_project_tests  # the engine and the suites' models: only when deploying

    try:
        report = run_project_tests(root)
    except FerryError as exc:
        return GateStep("tests", False, (f"the suites could not run: {exc}",))
    if not report.cases:
        return GateStep("tests", True, ("no test cases (tests/<agent>.yaml)",))
    lines = [f"{report.passed} passed, {report.failed} failed, {report.errored} could not run"]
    lines += [f"{case.id}: {case.failure_reason or case.status}" for case in report.cases if not case.passed]
    return GateStep("tests", report.failed == 0 and report.errored == 0, tuple(lines))


def run_gate(candidate: Candidate, *, skip_tests: bool, tests: TestRunner = project_tests_step) -> list[GateStep]:
    """The steps run, in order; the first that fails ends the gate."""
    with tempfile.TemporaryDirectory(prefix=f"ferry-gate-{candidate.version}-") as scratch:
        root = write_tree(candidate, Path(scratch))
        steps = [lint_step(root)]
        if steps[-1].ok and not skip_tests:
            steps.append(tests(root))
        return steps
