"""Resolving tool refs (`module.func`, `pkg.module.func`, `module.prefix_*`) to `ToolDef`s.

Resolution is cached per load: a project of 200 agents sharing ten tools imports each
module once and builds each schema once. Failures are cached too, so a module that
raises on import is reported once per ref that uses it, with the exception's message.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from types import ModuleType

from app.contracts.errors import ConfigError
from app.project.tool_import import ToolImportError, ToolModules
from app.project.tool_schema import CONTEXT_PARAM, ToolSchemaError, openai_tool_schema
from app.project.tooldef import ToolDef

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WILDCARD_CHARS = re.compile(r"[*?\[]")


class ToolRefError(ConfigError):
    """A ref that does not name a usable tool; the message says why."""


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
        self._modules: dict[str, ModuleType | ToolRefError] = {}
        self._tools: dict[str, ToolDef | ToolRefError] = {}
        #: Every ref an agent asked for, resolvable or not (the linter's "unused tool" check).
        self.referenced: set[str] = set()

    def referenced_modules(self) -> set[str]:
        return {split_ref(ref)[0] for ref in self.referenced}

    def module(self, dotted: str) -> ModuleType:
        cached = self._modules.get(dotted)
        if cached is None:
            try:
                cached = self.modules.load(dotted)
            except ToolImportError as exc:
                cached = ToolRefError(str(exc))
            self._modules[dotted] = cached
        if isinstance(cached, ToolRefError):
            raise cached
        return cached

    def public_functions(self, dotted: str) -> dict[str, object]:
        """Functions defined (not imported) in a tool module whose names do not start with '_'."""
        module = self.module(dotted)
        return {
            name: func
            for name, func in inspect.getmembers(module, inspect.isfunction)
            if not name.startswith("_") and func.__module__ == module.__name__
        }

    def resolve(self, ref: str) -> list[ToolDef]:
        """All tools a ref stands for (several for a wildcard); raises `ToolRefError`."""
        module, func = split_ref(ref)
        if _WILDCARD_CHARS.search(func):
            names = sorted(n for n in self.public_functions(module) if fnmatch.fnmatchcase(n, func))
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

    def _function(self, ref: str) -> tuple[str, object]:
        dotted, name = split_ref(ref)
        module = self.module(dotted)
        func = getattr(module, name, None)
        path = f"tools/{dotted.replace('.', '/')}.py"
        if func is None:
            raise ToolRefError(f"no function {name!r} in {path}")
        if not inspect.isfunction(func):
            raise ToolRefError(f"{name!r} in {path} is not a function")
        if func.__module__ != module.__name__:
            raise ToolRefError(f"{name!r} is imported into {path}; reference the module that defines it")
        if name.startswith("_"):
            raise ToolRefError(f"{name!r} is private (starts with '_'); it cannot be a tool")
        return name, func

    def _build(self, ref: str) -> ToolDef:
        name, func = self._function(ref)
        try:
            schema, description, takes_context = openai_tool_schema(name, func)  # type: ignore[arg-type]
        except ToolSchemaError as exc:
            raise ToolRefError(f"tool {ref!r}: {exc}") from exc
        return ToolDef(
            name=name,
            ref=ref,
            func=func,
            schema=schema,
            description=description,  # type: ignore[arg-type]
            is_async=inspect.iscoroutinefunction(func),
            takes_context=takes_context,
        )

    def tool_agent_function(self, ref: str) -> ToolDef:
        """The function of a `type: tool` agent, called as func(payload=..., [context=...])."""
        if _WILDCARD_CHARS.search(ref):
            raise ToolRefError(f"{ref!r}: a tool agent names exactly one function, not a wildcard")
        self.referenced.add(ref)
        name, func = self._function(ref)
        parameters = inspect.signature(func).parameters  # type: ignore[arg-type]
        if "payload" not in parameters:
            raise ToolRefError(f"{ref!r} must take a 'payload' parameter (and optionally 'context')")
        extra = [p for p in parameters if p not in ("payload", CONTEXT_PARAM)]
        if extra:
            raise ToolRefError(f"{ref!r} may only take 'payload' and 'context' (remove {', '.join(extra)})")
        payload_schema = {"type": "object", "properties": {"payload": {"type": "object"}}, "required": ["payload"]}
        return ToolDef(
            name=name,
            ref=ref,
            func=func,  # type: ignore[arg-type]
            schema={"type": "function", "function": {"name": name, "description": "", "parameters": payload_schema}},
            description=(inspect.getdoc(func) or "").split("\n\n")[0],  # type: ignore[arg-type]
            is_async=inspect.iscoroutinefunction(func),
            takes_context=CONTEXT_PARAM in parameters,
        )
