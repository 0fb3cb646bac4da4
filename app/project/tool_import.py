"""Importing a project's `tools/` modules without touching `sys.path`.

Every project gets its own package name, `_ferry_tools_<digest>`, where the digest
covers the project root and the bytes of its tool files. Two projects (or two versions
of one project during a hot reload) therefore never share a module object, while
loading an unchanged project twice reuses the already-imported modules. Modules are
registered in `sys.modules` because Python's relative imports (`from .helpers import x`)
and pickling need it; `sys.path` is never changed.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from app.contracts.errors import ConfigError
from app.project.problems import Loc

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ToolImportError(ConfigError):
    """A tool module that is missing, outside `tools/`, or raised while being imported.

    `raised_at` is set when the module exists but raised: the line in `tools/` where it
    did, so the failure is reported once there rather than at every ref that uses the
    module. `missing` says the module file does not exist (a misspelt ref, maybe).
    """

    def __init__(self, message: str, *, raised_at: Loc | None = None, missing: bool = False) -> None:
        super().__init__(message)
        self.raised_at = raised_at
        self.missing = missing


def package_name_for(root: Path, tool_digest: str) -> str:
    digest = hashlib.sha256(f"{root.resolve()}\x00{tool_digest}".encode()).hexdigest()[:16]
    return f"_ferry_tools_{digest}"


class ToolModules:
    """The tool modules of one project load; imports each module at most once."""

    def __init__(self, root: Path, tool_digest: str) -> None:
        self.tools_dir = (root / "tools").resolve()
        self.package = package_name_for(root, tool_digest)

    def module_file(self, dotted: str) -> Path:
        """`a.b` → tools/a/b.py, refusing anything that could leave `tools/`."""
        parts = dotted.split(".")
        if not all(_IDENTIFIER.match(part) for part in parts):
            raise ToolImportError(f"{dotted!r} is not a module path (use identifiers separated by dots)")
        path = self.tools_dir.joinpath(*parts[:-1], f"{parts[-1]}.py")
        resolved = path.resolve()
        if not resolved.is_relative_to(self.tools_dir):
            raise ToolImportError(f"tools/{'/'.join(parts)}.py resolves outside the project's tools/ folder")
        if not resolved.is_file():
            raise ToolImportError(f"no tool module tools/{'/'.join(parts)}.py", missing=True)
        return resolved

    def module_name(self, dotted: str) -> str:
        return f"{self.package}.{dotted}"

    def load(self, dotted: str) -> ModuleType:
        """Import tools/<dotted>.py (and its parent packages) under this project's package."""
        name = self.module_name(dotted)
        cached = sys.modules.get(name)
        if cached is not None:
            return cached
        path = self.module_file(dotted)
        parent = self._ensure_package(dotted.split(".")[:-1])
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ToolImportError(f"cannot import {path.name}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
            raise ToolImportError(
                f"importing tools/{dotted.replace('.', '/')}.py raised {type(exc).__name__}: {reason}",
                raised_at=self._where_raised(exc) or Loc(f"tools/{dotted.replace('.', '/')}.py"),
            ) from exc
        setattr(parent, dotted.split(".")[-1], module)
        return module

    def module_names(self) -> list[str]:
        """Every importable module under `tools/` as a dotted name (for "did you mean")."""
        return sorted(
            ".".join(path.relative_to(self.tools_dir).with_suffix("").parts)
            for path in self.tools_dir.rglob("*.py")
            if not any(part.startswith((".", "_")) for part in path.relative_to(self.tools_dir).parts)
        )

    def _where_raised(self, exc: BaseException) -> Loc | None:
        """The innermost line inside `tools/` the failure came from (a syntax error: its own position)."""
        if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
            return self.loc_of(Path(exc.filename), exc.lineno, exc.offset or 1)
        where = None
        for frame, line in traceback.walk_tb(exc.__traceback__):
            where = self.loc_of(Path(frame.f_code.co_filename), line, 1) or where
        return where

    def loc_of(self, path: Path, line: int, column: int) -> Loc | None:
        """A position in a file under `tools/`, as a project-relative `Loc`; None for any other file."""
        try:
            relative = path.resolve().relative_to(self.tools_dir)
        except (ValueError, OSError):
            return None
        return Loc(f"tools/{relative.as_posix()}", line, column)

    def _ensure_package(self, parts: list[str]) -> ModuleType:
        """The package module for tools/<parts...>, created (not executed) if needed."""
        name = self.package
        directory = self.tools_dir
        module = sys.modules.get(name) or self._new_package(name, directory)
        for part in parts:
            name, directory = f"{name}.{part}", directory / part
            child = sys.modules.get(name) or self._new_package(name, directory)
            setattr(module, part, child)
            module = child
        return module

    @staticmethod
    def _new_package(name: str, directory: Path) -> ModuleType:
        """A bare package for a folder: its `__init__.py`, if any, is deliberately not run,
        so that importing one tool never executes code the agent does not reference."""
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(directory)]
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        return module
