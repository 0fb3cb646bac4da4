"""Problems found in a project, each with the file position a user can jump to.

`load_project` collects every problem before giving up so that one run of `ferry lint`
shows all mistakes of a project, not the first one per try.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.contracts.errors import ConfigError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Loc:
    """A position in a project file: path relative to the project root, 1-based line/column."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        # Line 0 means "the file or directory as a whole".
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class Problem:
    severity: Severity
    message: str
    loc: Loc
    key_path: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{self.loc} {self.key_path}" if self.key_path else str(self.loc)
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "file": self.loc.file,
            "line": self.loc.line,
            "column": self.loc.column,
            "key_path": self.key_path,
            "message": self.message,
        }


def format_problem(problem: Problem) -> str:
    """The one line every listing prints for a problem; a warning says so at the end."""
    return str(problem) if problem.is_error else f"{problem} [warning]"


def format_problems(problems: Iterable[Problem]) -> str:
    """Problems one per line, as `ferry lint`, `ProjectError` and every command list them."""
    return "\n".join(format_problem(p) for p in problems)


class ProjectError(ConfigError):
    """A project that cannot be loaded; `.problems` holds every error and warning found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = sum(p.is_error for p in problems)
        warnings = len(problems) - errors
        head = f"{errors} error(s)" + (f" and {warnings} warning(s)" if warnings else "") + " in project"
        super().__init__(f"{head}:\n{format_problems(problems)}" if problems else f"{head}: could not be loaded")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


class Problems:
    """The collector threaded through one load: appended to, never raised from."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, loc: Loc, message: str, key_path: str = "") -> None:
        self.items.append(Problem("error", message, loc, key_path))

    def warning(self, loc: Loc, message: str, key_path: str = "") -> None:
        self.items.append(Problem("warning", message, loc, key_path))

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.items)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.loc.file, p.loc.line, p.loc.column, p.message))
