"""`lint_project`: every problem of a project, plus advice the loader does not need.

On top of the loader's errors and warnings, the linter warns about schemas no agent
uses and tool functions no agent references: both are usually leftovers of a rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.project.loader import LoadState, ProjectNotFoundError, collect, dedupe
from app.project.problems import Loc, Problem, Problems
from app.project.project import Project
from app.project.tool_refs import ToolRefError


@dataclass(frozen=True)
class LintReport:
    """`readable` is False when the path is not a project at all (nothing else was checked)."""

    path: str
    problems: tuple[Problem, ...]
    readable: bool = True
    project: Project | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        return self.readable and not self.errors

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "readable": self.readable,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.as_dict() for p in self.problems],
        }


def _unused_schemas(state: LoadState, problems: Problems) -> None:
    for name in sorted(set(state.schemas) - state.used_schemas):
        problems.warning(Loc(f"schemas/{name}.json"), f"schema {name!r} is not used by any agent")


def _unreferenced_tools(state: LoadState, problems: Problems) -> None:
    resolver = state.resolver
    if resolver is None:
        return
    for path in state.files.discover("tools", (".py",)):
        relative = path.relative_to(state.files.root / "tools").with_suffix("")
        if relative.name == "__init__" or any(part.startswith("_") for part in relative.parts):
            continue
        dotted = ".".join(relative.parts)
        rel = state.files.rel(path)
        try:
            functions = resolver.public_functions(dotted)
        except ToolRefError as exc:
            if dotted not in resolver.referenced_modules():  # else already an error
                failure = exc.import_failure
                where = failure.raised_at if failure is not None and failure.raised_at is not None else Loc(rel)
                problems.warning(where, f"no agent references this module, and {exc}")
            continue
        for name, func in functions.items():
            if f"{dotted}.{name}" not in resolver.referenced:
                line = getattr(getattr(func, "__code__", None), "co_firstlineno", 1)
                problems.warning(Loc(rel, line, 1), f"tool {dotted}.{name} is not referenced by any agent")


def lint_project(path: str | Path) -> LintReport:
    """Check a project; never raises for a project's mistakes, they are all in the report."""
    try:
        state = collect(path)
    except ProjectNotFoundError as exc:
        return LintReport(str(path), tuple(exc.problems), readable=False)
    extra = Problems()
    _unused_schemas(state, extra)
    _unreferenced_tools(state, extra)
    problems = dedupe(
        sorted([*state.problems.items, *extra.items], key=lambda p: (p.loc.file, p.loc.line, p.loc.column, p.message))
    )
    return LintReport(str(path), tuple(problems), project=state.project)
