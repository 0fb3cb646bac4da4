"""Finding and parsing a project's test suites: `tests/**/*.yaml`, Connic's format.

Each file is parsed with `connic.test_schema.TestFile`, the model connic-composer-sdk
ships for this format, so a suite means the same here as on Connic. Discovery follows
Connic's (`connic test`): every `.yaml` under `tests/`, recursively, hidden files
skipped, an empty file skipped, the agent the file's `agent:` or else its stem. Ferry
skips, in addition, what cannot be a suite: `tests/cassettes|mocks|files|builders/`,
and any folder below `tests/` that is a Python test package (`__init__.py` or
`conftest.py`) or a project of its own (an `agents/` folder), so a project's pytest
tests and fixture projects can live beside its suites.

A file that cannot be used is a `ConfigError` (made by `suite_error`) naming the file and line: nothing of the
suite runs then (`ferry test` exits 2).
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connic.test_schema import TestCase, TestFile
from pydantic import ValidationError

from app.contracts.errors import ConfigError
from app.project.yamlmarks import PathKey, Shadow, YamlSyntaxError, load_yaml

TESTS_DIR = "tests"
#: Folders of `tests/` holding a suite's material, never suites.
MATERIAL_DIRS = frozenset({"cassettes", "mocks", "files", "builders"})
_PACKAGE_MARKERS = ("__init__.py", "conftest.py")


def suite_error(file: str, line: int, message: str) -> ConfigError:
    """A suite file that cannot run (bad YAML, not the format, an unknown agent, a missing
    mock): a `ConfigError` whose one line starts with `file:line:`."""
    return ConfigError(f"{file}:{line}: {message}")


@dataclass(frozen=True)
class Suite:
    """One parsed suite file."""

    path: Path
    rel: str  # relative to the project root, POSIX style: tests/invoice-extractor.yaml
    key: str  # relative to tests/ without .yaml: the suite's folder under tests/cassettes/
    agent: str
    file: TestFile
    shadow: Shadow

    def line_of(self, *path: PathKey) -> int:
        """The line of the key (or item) at `path`, or of the nearest enclosing one written."""
        node, _ = self.shadow.find(path)
        return (node.key_loc or node.loc).line or 1


@dataclass(frozen=True)
class Case:
    """One test case of a suite, with the file's defaults merged in (`TestFile.resolved`)."""

    suite: Suite
    index: int
    spec: TestCase
    settings: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.name)

    @property
    def id(self) -> str:
        return f"{self.suite.agent}::{self.spec.name}"

    def line(self) -> int:
        return self.suite.line_of("tests", self.index)


def discover_suite_files(project_root: Path) -> list[Path]:
    """Every suite file of the project, in a stable order."""
    tests_dir = project_root / TESTS_DIR
    if tests_dir.is_symlink():
        raise suite_error(TESTS_DIR, 1, "symbolic links are not allowed for tests/")
    if not tests_dir.is_dir():
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(tests_dir):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if _searched(here / d, top=here == tests_dir))
        found += [here / f for f in files if f.lower().endswith(".yaml") and not f.startswith(".")]
    return sorted(found)


def _searched(folder: Path, *, top: bool) -> bool:
    if folder.name.startswith(".") or folder.is_symlink() or (top and folder.name in MATERIAL_DIRS):
        return False
    if any((folder / marker).exists() for marker in _PACKAGE_MARKERS):
        return False
    return not (folder / "agents").is_dir()


def load_suite(project_root: Path, path: Path) -> Suite | None:
    """Parse one suite file; None for an empty one (skipped, as Connic's runner does)."""
    rel = path.relative_to(project_root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise suite_error(rel, 1, f"cannot read it: {exc}") from None
    try:
        loaded = load_yaml(text, rel)
    except YamlSyntaxError as exc:
        raise suite_error(rel, exc.loc.line or 1, exc.message) from None
    if loaded.data is None:
        return None
    if not isinstance(loaded.data, dict):
        raise suite_error(rel, 1, "a test suite is a mapping with `tests:` (see docs/testing.md)")
    try:
        parsed = TestFile.model_validate(loaded.data)
    except ValidationError as exc:
        raise _validation_error(rel, loaded.shadow, exc) from None
    key = path.relative_to(project_root / TESTS_DIR).with_suffix("").as_posix()
    agent = parsed.agent if parsed.agent else path.stem
    return Suite(path=path, rel=rel, key=key, agent=agent, file=parsed, shadow=loaded.shadow)


def _validation_error(rel: str, shadow: Shadow, exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(part for part in first["loc"] if isinstance(part, str | int))
    node, _ = shadow.find(loc)
    line = (node.key_loc or node.loc).line or 1
    where = ".".join(str(part) for part in shadow.written_path(loc))
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return suite_error(rel, line, f"{where}: {message}{more}" if where else f"{message}{more}")


def cases_of(suite: Suite) -> list[Case]:
    return [
        Case(suite=suite, index=index, spec=case, settings=suite.file.resolved(case))
        for index, case in enumerate(suite.file.tests)
    ]


def matches_filter(case: Case, pattern: str | None) -> bool:
    """`--filter`: a substring of `agent::name` (Connic's meaning), or a glob when it has `*?[`."""
    if not pattern:
        return True
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(case.id, pattern) or fnmatch.fnmatchcase(case.name, pattern)
    return pattern in case.id


def check_suite(project_root: Path, suite: Suite, agent_names: Iterable[str]) -> None:
    """What Connic checks before a run, and what Ferry can check without running: the agent
    exists, referenced mocks, builders and files exist, every expression parses."""
    known = sorted(agent_names)
    if suite.agent not in known:
        message = f"unknown agent {suite.agent!r}"
        if suite.file.agent is None:
            message += " (from the file name; set `agent:` to target another agent)"
        close = difflib.get_close_matches(suite.agent, known, n=3)
        if close:
            message += f". Did you mean {', '.join(repr(name) for name in close)}?"
        raise suite_error(suite.rel, suite.line_of("agent"), message)
    tests_dir = project_root / TESTS_DIR
    if suite.file.defaults.mocks:
        _require(project_root, suite, tests_dir / "mocks" / f"{suite.file.defaults.mocks}.py", ("defaults", "mocks"))
    for index, case in enumerate(suite.file.tests):
        if case.mocks:
            _require(project_root, suite, tests_dir / "mocks" / f"{case.mocks}.py", ("tests", index, "mocks"))
        if case.builder:
            _require(project_root, suite, tests_dir / "builders" / f"{case.builder}.py", ("tests", index, "builder"))
        for position, name in enumerate(case.files):
            _require(project_root, suite, tests_dir / "files" / name, ("tests", index, "files", position))
        for where, expression in _expressions(case, index):
            _require_expression(suite, where, expression)


def _require(project_root: Path, suite: Suite, path: Path, where: tuple[PathKey, ...]) -> None:
    if not path.is_file():
        shown = path.relative_to(project_root).as_posix()
        raise suite_error(suite.rel, suite.line_of(*where), f"{shown} does not exist")


def _expressions(case: TestCase, index: int) -> Iterator[tuple[tuple[PathKey, ...], str]]:
    if case.expected_result:
        yield ("tests", index, "expected_result"), case.expected_result
    for position, entry in enumerate(case.expected_tool_calls):
        if isinstance(entry, dict):
            yield ("tests", index, "expected_tool_calls", position), next(iter(entry.values()))
    for position, decision in enumerate(case.approval_decisions):
        if decision.params:
            yield ("tests", index, "approval_decisions", position, "params"), decision.params


def _require_expression(suite: Suite, where: tuple[PathKey, ...], expression: str) -> None:
    try:
        ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise suite_error(suite.rel, suite.line_of(*where), f"invalid expression {expression!r}: {exc.msg}") from None
