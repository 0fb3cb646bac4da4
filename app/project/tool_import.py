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
from pathlib import Path
from types import ModuleType

from app.contracts.errors import ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ToolImportError(ConfigError):
    """A tool module that is missing, outside `tools/`, or raised while being imported."""


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
            raise ToolImportError(f"no tool module tools/{'/'.join(parts)}.py")
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
            raise ToolImportError(
                f"importing tools/{dotted.replace('.', '/')}.py raised {type(exc).__name__}: {exc}"
            ) from exc
        setattr(parent, dotted.split(".")[-1], module)
        return module

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
