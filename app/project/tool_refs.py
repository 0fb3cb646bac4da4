"""Resolving tool refs (`module.func`, `pkg.module.func`, `module.prefix_*`) to `ToolDef`s.

Resolution is cached per load: a project of 200 agents sharing ten tools imports each
module once and builds each schema once. Failures are cached too; a module that raises
on import carries where it raised, so the loader reports it once, at that line.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from app.contracts.errors import ConfigError
from app.project.problems import Loc
from app.project.suggest import nearest
from app.project.tool_import import ToolImportError, ToolModules
from app.project.tool_schema import CONTEXT_PARAM, ToolSchemaError, openai_tool_schema
from app.project.tooldef import ToolDef

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WILDCARD_CHARS = re.compile(r"[*?\[]")


class ToolRefError(ConfigError):
    """A ref that does not name a usable tool; the message says why.

    `reasons` holds every reason (a signature can break several rules at once, and each
    is reported). `defined_at` is the tool's `def` line: a reason about the function
    itself is reported there too, where the fix is made. `import_failure` is set when
    the module exists but raised on import; that is reported once, at the module.
    """

    def __init__(
        self,
        *reasons: str,
        defined_at: Loc | None = None,
        import_failure: ToolImportError | None = None,
    ) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.defined_at = defined_at
        self.import_failure = import_failure


def split_ref(ref: str) -> tuple[str, str]:
    """`a.b.func` → (`a.b`, `func`); refuses anything that is not dotted identifiers."""
    module, _, func = ref.strip().rpartition(".")
    if not module or not func:
        raise ToolRefError(f"{ref!r} is not a tool ref: use module.function (e.g. documents.parse_pdf)")
    if not all(_IDENTIFIER.match(part) for part in module.split(".")):
        raise ToolRefError(f"{ref!r}: {module!r} is not a module path under tools/ (identifiers and dots only)")
    if not _WILDCARD_CHARS.search(func) and not _IDENTIFIER.match(func):
        raise ToolRefError(f"{ref!r}: {func!r} is not a function name")
    return module, func


class ToolResolver:
    def __init__(self, modules: ToolModules) -> None:
        self.modules = modules
        self._modules: dict[str, ModuleType | ToolImportError] = {}
        self._tools: dict[str, ToolDef | ToolRefError] = {}
        #: Every ref an agent asked for, resolvable or not (the linter's "unused tool" check).
        self.referenced: set[str] = set()

    def referenced_modules(self) -> set[str]:
        return {split_ref(ref)[0] for ref in self.referenced}

    def module(self, dotted: str, func: str = "") -> ModuleType:
        """tools/<dotted>.py, imported once; `func` completes the ref suggested for a misspelt module."""
        cached = self._modules.get(dotted)
        if cached is None:
            try:
                cached = self.modules.load(dotted)
            except ToolImportError as exc:
                cached = exc
            self._modules[dotted] = cached
        if not isinstance(cached, ToolImportError):
            return cached
        if cached.raised_at is not None:
            raise ToolRefError(str(cached), import_failure=cached)
        near = nearest(dotted, self.modules.module_names()) if cached.missing else None
        hint = f" — did you mean `{near}.{func}`?" if near and func else f" — did you mean `{near}`?" if near else ""
        raise ToolRefError(f"{cached}{hint}")

    def public_functions(self, dotted: str, pattern: str = "") -> dict[str, object]:
        """Functions defined (not imported) in a tool module whose names do not start with '_'."""
        module = self.module(dotted, pattern)
        return {
            name: func
            for name, func in inspect.getmembers(module, inspect.isfunction)
            if not name.startswith("_") and func.__module__ == module.__name__
        }

    def resolve(self, ref: str) -> list[ToolDef]:
        """All tools a ref stands for (several for a wildcard); raises `ToolRefError`."""
        module, func = split_ref(ref)
        if _WILDCARD_CHARS.search(func):
            names = sorted(n for n in self.public_functions(module, func) if fnmatch.fnmatchcase(n, func))
            if not names:
                raise ToolRefError(f"wildcard {ref!r} matched no function in tools/{module.replace('.', '/')}.py")
            return [self.one(f"{module}.{name}") for name in names]
        return [self.one(f"{module}.{func}")]

    def one(self, ref: str) -> ToolDef:
        self.referenced.add(ref)
        cached = self._tools.get(ref)
        if cached is None:
            try:
                cached = self._build(ref)
            except ToolRefError as exc:
                cached = exc
            self._tools[ref] = cached
        if isinstance(cached, ToolRefError):
            raise cached
        return cached

    def _function(self, ref: str) -> tuple[str, Callable[..., Any]]:
        dotted, name = split_ref(ref)
        module = self.module(dotted, name)
        func = getattr(module, name, None)
        path = f"tools/{dotted.replace('.', '/')}.py"
        if func is None:
            near = nearest(name, self.public_functions(dotted))
            raise ToolRefError(
                f"no function {name!r} in {path}" + (f" — did you mean `{dotted}.{near}`?" if near else "")
            )
        if not inspect.isfunction(func):
            raise ToolRefError(f"{name!r} in {path} is not a function")
        if func.__module__ != module.__name__:
            raise ToolRefError(f"{name!r} is imported into {path}; reference the module that defines it")
        if name.startswith("_"):
            raise ToolRefError(f"{name!r} is private (starts with '_'); it cannot be a tool")
        return name, func

    def _defined_at(self, ref: str, func: Callable[..., Any]) -> Loc:
        """The `def` line of a tool (of the function a decorator wrapped, if it is in the module)."""
        dotted, _ = split_ref(ref)
        code = getattr(inspect.unwrap(func), "__code__", None)
        where = self.modules.loc_of(Path(code.co_filename), code.co_firstlineno, 1) if code is not None else None
        return where or Loc(f"tools/{dotted.replace('.', '/')}.py")

    def _build(self, ref: str) -> ToolDef:
        name, func = self._function(ref)
        try:
            schema, description, takes_context = openai_tool_schema(name, func)
        except ToolSchemaError as exc:
            reasons = (f"tool {ref!r}: {problem}" for problem in exc.problems)
            raise ToolRefError(*reasons, defined_at=self._defined_at(ref, func)) from exc
        return ToolDef(
            name=name,
            ref=ref,
            func=func,
            schema=schema,
            description=description,
            is_async=inspect.iscoroutinefunction(func),
            takes_context=takes_context,
        )

    def tool_agent_function(self, ref: str) -> ToolDef:
        """The function of a `type: tool` agent, called as func(payload=..., [context=...])."""
        if _WILDCARD_CHARS.search(ref):
            raise ToolRefError(f"{ref!r}: a tool agent names exactly one function, not a wildcard")
        self.referenced.add(ref)
        name, func = self._function(ref)
        parameters = inspect.signature(func).parameters
        if "payload" not in parameters:
            raise ToolRefError(
                f"{ref!r} must take a 'payload' parameter (and optionally 'context')",
                defined_at=self._defined_at(ref, func),
            )
        extra = [p for p in parameters if p not in ("payload", CONTEXT_PARAM)]
        if extra:
            raise ToolRefError(
                f"{ref!r} may only take 'payload' and 'context' (remove {', '.join(extra)})",
                defined_at=self._defined_at(ref, func),
            )
        payload_schema = {"type": "object", "properties": {"payload": {"type": "object"}}, "required": ["payload"]}
        return ToolDef(
            name=name,
            ref=ref,
            func=func,
            schema={"type": "function", "function": {"name": name, "description": "", "parameters": payload_schema}},
            description=(inspect.getdoc(func) or "").split("\n\n")[0],
            is_async=inspect.iscoroutinefunction(func),
            takes_context=CONTEXT_PARAM in parameters,
        )
