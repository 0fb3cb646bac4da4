"""The `connic.tools` functions a project imports, made real for the run that calls them.

`connic-composer-sdk` ships `connic.tools` as placeholders that raise until a runtime
replaces them. User code binds them at import time (`from connic.tools import db_find`),
so Ferry replaces them once, before it imports any project module (`install`), with
dispatchers that hold no state at all: each looks up the run it is called from in a
context variable and calls that run's implementation. Two tenants' runs in one process
therefore share the dispatcher functions and nothing else: what a call can reach (which
documents, which agents) is decided by the `ConnicRun` bound to the calling task.

The SDK itself is imported only when a project needs it: `install_when_imported` (the
loader's, before any project module runs) installs the dispatchers the moment anything
imports `connic`, and the name tables are read from the SDK on the first name looked up
(a bare name in `tools:`). A project that never imports `connic` and lists no predefined
tool runs without it.

This module is the foundation the project loader needs (names, `install`, the tool
definitions of predefined tools); it imports nothing of Ferry above `contracts`.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import importlib.abc
import importlib.machinery
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from app.compat.sdk import tool_file
from app.contracts.errors import ToolError


@functools.cache
def predefined_names() -> frozenset[str]:
    """Every name a project may list bare in `tools:` or import from `connic.tools` (the SDK's own tables)."""
    from connic.loader import PREDEFINED_TOOL_ALIASES, PREDEFINED_TOOL_NAMES

    return frozenset(PREDEFINED_TOOL_NAMES) | frozenset(PREDEFINED_TOOL_ALIASES)


@functools.cache
def _aliases() -> Mapping[str, str]:
    from connic.loader import PREDEFINED_TOOL_ALIASES

    return dict(PREDEFINED_TOOL_ALIASES)


Implementation = Callable[..., Awaitable[Any]]


def canonical(name: str) -> str:
    """`query_knowledge` → `retrieval_query`: aliases share one implementation."""
    return _aliases().get(name, name)


#: A run's predefined tools: implementations by canonical name, and why the others cannot be provided.
ToolTable = tuple[Mapping[str, Implementation], Mapping[str, str]]


def _no_tools() -> ToolTable:
    return {}, {}


@dataclass
class ConnicRun:
    """What `connic.tools` calls may reach during one run: its implementations by
    canonical name (bound to the run's tenant and environment by whoever built them).

    `build` makes the table on the run's first call: most runs call no predefined tool,
    and building every db_/retrieval_/file tool of every run was 4-6 % of a worker's CPU."""

    run_id: str
    agent: str
    tenant: str
    build: Callable[[], ToolTable] = _no_tools
    _table: ToolTable | None = field(default=None, init=False, repr=False)

    def tools(self) -> ToolTable:
        if self._table is None:
            self._table = self.build()
        return self._table

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        key = canonical(name)
        implementations, unavailable = self.tools()
        implementation = implementations.get(key)
        if implementation is None:
            why = unavailable.get(key) or f"Ferry does not provide the predefined tool {name!r}"
            raise ToolError(why, name)
        return await implementation(**arguments)


_CURRENT: contextvars.ContextVar[ConnicRun | None] = contextvars.ContextVar("ferry_connic_run", default=None)


def current_run(name: str = "connic.tools") -> ConnicRun:
    run = _CURRENT.get()
    if run is None:
        raise ToolError(
            f"{name} was called outside a Ferry run (e.g. in a tool with `isolation: process`, or at import "
            "time): predefined tools only work inside a run's own task",
            name,
        )
    return run


@contextlib.contextmanager
def bound(run: ConnicRun) -> Iterator[ConnicRun]:
    """Bind `run` to the calling task (and every task and thread it starts) until exit."""
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)


def _dispatcher(name: str, placeholder: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    signature = inspect.signature(placeholder)

    @functools.wraps(placeholder)
    async def dispatch(*args: Any, **kwargs: Any) -> Any:
        try:
            bound_args = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ToolError(f"{name}: {exc}", name) from None
        bound_args.apply_defaults()
        return await current_run(name).call(name, dict(bound_args.arguments))

    dispatch.__ferry_predefined__ = name  # type: ignore[attr-defined]
    return dispatch


_INSTALL_LOCK = threading.Lock()
_DISPATCHERS: dict[str, Callable[..., Awaitable[Any]]] = {}


def install() -> None:
    """Replace every `connic.tools` placeholder by its dispatcher; idempotent, thread-safe.

    Called before any project module is imported. The dispatchers are the same for every
    project and tenant in the process, and stateless, so installing twice changes nothing.
    """
    with _INSTALL_LOCK:
        if _DISPATCHERS:
            return
        import connic.tools as connic_tools

        # Also the names importable from `connic.tools` but not listable in `tools:`.
        names = sorted(predefined_names() | frozenset(getattr(connic_tools, "__all__", ())))
        for name in names:
            placeholder = getattr(connic_tools, name, None)
            if placeholder is None or not callable(placeholder):
                continue
            _DISPATCHERS[name] = _dispatcher(name, placeholder)
        for name, dispatch in _DISPATCHERS.items():
            setattr(connic_tools, name, dispatch)


def install_when_imported() -> None:
    """`install` now if the SDK is loaded, else right after the first import of `connic`
    (the package runs whole before any `from connic.tools import ...` binds a name), so a
    project whose code never imports it does not load it."""
    if "connic" in sys.modules or not isinstance(_sdk_loader(), importlib.machinery.SourceFileLoader):
        install()  # loaded already, or installed in a form the hook below does not load: at once
        return
    with _INSTALL_LOCK:
        if not _DISPATCHERS and not any(isinstance(finder, _InstallOnImport) for finder in sys.meta_path):
            sys.meta_path.insert(0, _InstallOnImport())


def _sdk_loader() -> object:
    spec = importlib.machinery.PathFinder.find_spec("connic")
    return spec.loader if spec is not None else None


class _InstallOnImport(importlib.abc.MetaPathFinder):
    """Finds `connic` as the path finder does, with a loader that installs once the package has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "connic":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = _InstallAfterImport(spec.loader.name, spec.loader.path)
        return spec


class _InstallAfterImport(importlib.machinery.SourceFileLoader):
    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)
        install()
        for finder in [f for f in sys.meta_path if isinstance(f, _InstallOnImport)]:
            sys.meta_path.remove(finder)  # done: later imports of `connic` find it in sys.modules


def dispatcher(name: str) -> Callable[..., Awaitable[Any]]:
    """The installed `connic.tools` function `name` (installing first if needed)."""
    install()
    return _DISPATCHERS[name]


def for_model(value: Any) -> Any:
    """A tool's result as the model can read it: bytes (`file_read`'s content) become text
    when they are UTF-8, else `{"base64": ...}`, and a `ToolFile` its description and
    content; Python callers of a predefined tool get the bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, tool_file()):  # a file a tool returns (SDK `ToolFile`): described, its bytes readable
        described: dict[str, Any] = {"name": value.name, "mime_type": value.mime_type, "size_bytes": value.size_bytes}
        if value.uri is not None:
            described["uri"] = value.uri
        if value.data is not None:
            content = for_model(value.data)
            described.update(content if isinstance(content, dict) else {"text": content})
        return described
    if isinstance(value, Mapping):
        return {key: for_model(item) for key, item in value.items()}
    if isinstance(value, list):
        return [for_model(item) for item in value]
    return value


def model_facing(name: str) -> Callable[..., Awaitable[Any]]:
    """The function the engine calls when the model asks for predefined tool `name`."""
    call = dispatcher(name)

    @functools.wraps(call)
    async def offered(**arguments: Any) -> Any:
        return for_model(await call(**arguments))

    return offered


def placeholder_of(name: str) -> Callable[..., Any]:
    """The SDK's own function: its signature and docstring describe the tool to the LLM."""
    original: Callable[..., Any] = inspect.unwrap(dispatcher(name))
    return original
