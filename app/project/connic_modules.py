"""`middleware/<agent>.py` and `hooks/<agent>.py`: imported at load, kept per agent.

Connic runs these around an agent's runs (SDK `connic.core.Middleware`, `ToolHook`); the
engine calls them, the loader only imports them and checks that what Connic would call
is callable. Like tool modules, each gets a package name of its own derived from the
project root and its bytes (`_ferry_middleware_<digest>.<agent>`), so two projects or two
versions of one never share a module and `sys.path` is never changed. The predefined
tools are installed into `connic.tools` before any of them is imported (loader.py).

A file whose name matches no agent is a warning: it would run for nothing.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import sys
import traceback
from collections.abc import Collection, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from app.project.agent_files import AgentSource
from app.project.conditions import ConditionError, parse_condition
from app.project.files import ProjectFiles
from app.project.problems import Loc, Problems

if TYPE_CHECKING:
    from connic.core import Middleware, ToolHook

#: folder → the functions Connic calls in one of its files
FUNCTIONS: Mapping[str, tuple[str, ...]] = {"middleware": ("before", "after", "cleanup"), "hooks": ("before", "after")}


def _import(files: ProjectFiles, folder: str, path: Path, problems: Problems) -> ModuleType | None:
    data = files.read_bytes(path)
    if data is None:
        return None
    digest = hashlib.sha256(f"{files.root}\x00".encode() + data).hexdigest()[:16]
    package = f"_ferry_{folder}_{digest}"
    name = f"{package}.{path.stem}"
    cached = sys.modules.get(name)
    if cached is not None:
        return cached
    if package not in sys.modules:
        package_spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        package_spec.submodule_search_locations = [str(path.parent)]
        sys.modules[package] = importlib.util.module_from_spec(package_spec)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        problems.error(Loc(files.rel(path), 0, 0), "cannot be imported")
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        problems.error(
            _raised_at(files, path, exc), f"importing {files.rel(path)} raised {type(exc).__name__}: {reason}"
        )
        return None
    return module


def _raised_at(files: ProjectFiles, path: Path, exc: BaseException) -> Loc:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return Loc(files.rel(path), exc.lineno, exc.offset or 1)
    where = Loc(files.rel(path), 0, 0)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if Path(frame.f_code.co_filename).resolve() == path.resolve():
            where = Loc(files.rel(path), line, 1)
    return where


def _functions(module: ModuleType, folder: str, rel: str, problems: Problems) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in FUNCTIONS[folder]:
        value = getattr(module, name, None)
        if value is None:
            continue
        if not callable(value):
            problems.error(Loc(rel, 0, 0), f"{name} must be a function (Connic calls it)")
            continue
        found[name] = value
    return found


def load_agent_modules(
    files: ProjectFiles, agents: Collection[str], problems: Problems
) -> tuple[dict[str, Middleware], dict[str, ToolHook]]:
    """Each agent's middleware and tool hooks, imported; problems reported at their files."""
    middleware: dict[str, Middleware] = {}
    hooks: dict[str, ToolHook] = {}
    for folder in FUNCTIONS:
        for path in files.discover(folder, (".py",), recursive=False):
            if path.name.startswith("_"):
                continue  # Connic skips these too (helpers, __init__.py)
            rel = files.rel(path)
            if path.stem not in agents:
                files.read_bytes(path)  # it still changes what the project is
                problems.warning(Loc(rel, 0, 0), f"no agent named {path.stem!r}: this file is never run")
                continue
            module = _import(files, folder, path, problems)
            if module is None:
                continue
            functions = _functions(module, folder, rel, problems)
            if not functions:
                problems.warning(Loc(rel, 0, 0), f"defines none of {', '.join(FUNCTIONS[folder])}: nothing will run")
                continue
            from connic.core import Middleware, ToolHook  # a project with these files is a Connic one

            if folder == "middleware":
                middleware[path.stem] = Middleware(**functions)
            else:
                hooks[path.stem] = ToolHook(**functions)
    return middleware, hooks


JUDGED_WITHOUT_MODEL = (
    "a judged guardrail ({kind}) needs a judge model: set config.model (the agent has no model of its own) — "
    "this rule checks nothing"
)


def load_guardrails(files: ProjectFiles, sources: list[AgentSource], problems: Problems) -> dict[str, Any]:
    """The `check` function of every guardrails/<name>.py a custom rule names; a missing file
    is an error at the rule, a judged rule with no model to ask a warning there."""
    from app.compat.judge import JUDGED_KINDS  # the engine side's table

    wanted: dict[str, list[tuple[Loc, str]]] = {}
    for source in sources:
        spec = source.spec
        rules = getattr(spec, "guardrails", None)
        if rules is None:
            continue
        for direction in ("input", "output"):
            for index, rule in enumerate(getattr(rules, direction)):
                at = source.shadow.find(("guardrails", direction, index))[0].loc
                key_path = f"guardrails.{direction}[{index}]"
                if rule.type in JUDGED_KINDS and not (rule.config.get("model") or getattr(spec, "model", None)):
                    problems.warning(at, JUDGED_WITHOUT_MODEL.format(kind=rule.type), key_path)
                elif rule.type == "custom" and rule.name:
                    wanted.setdefault(rule.name, []).append((at, key_path))
    checks: dict[str, Any] = {}
    for path in files.discover("guardrails", (".py",), recursive=False):
        if path.name.startswith("_"):
            continue
        if path.stem not in wanted:
            files.read_bytes(path)
            problems.warning(Loc(files.rel(path), 0, 0), f"no custom guardrail rule names {path.stem!r}: never run")
            continue
        module = _import(files, "guardrails", path, problems)
        if module is None:
            continue
        check = getattr(module, "check", None)
        if not callable(check):
            problems.error(Loc(files.rel(path), 0, 0), "a custom guardrail must define check(content, context)")
            continue
        checks[path.stem] = check
    for name, places in wanted.items():
        if name not in checks and not (files.root / "guardrails" / f"{name}.py").is_file():
            for at, key_path in places:
                problems.error(at, f"no custom guardrail guardrails/{name}.py", key_path)
    return checks


def check_connic_keys(sources: list[AgentSource], problems: Problems) -> None:
    """Checks of Connic keys beyond their types: an MCP server's `condition` parses as a tool
    condition does and its name is unique per agent; `context_compression.session_history`
    and `files.session_only`, which Ferry does not run, are warnings."""
    for source in sources:
        files = getattr(source.spec, "files", None)
        if files is not None and (files.session_only or any(f.session_only for f in (files.folders or {}).values())):
            node = source.shadow.find(("files",))[0]
            problems.warning(
                node.key_loc or node.loc,
                "session_only is not run by Ferry yet — the file tools see every file of the allowed folders",
                "files",
            )
        compression = getattr(source.spec, "context_compression", None)
        if compression is not None and compression.session_history is not None:
            node = source.shadow.find(("context_compression", "session_history"))[0]
            problems.warning(
                node.key_loc or node.loc,
                "stored session-history compaction is not run by Ferry yet — a session keeps its last 40 messages",
                "context_compression.session_history",
            )
        seen: set[str] = set()
        for index, server in enumerate(getattr(source.spec, "mcp_servers", ())):
            at = source.shadow.find(("mcp_servers", index))[0].loc
            if server.name in seen:
                problems.error(at, f"MCP server name {server.name!r} is used twice", f"mcp_servers[{index}]")
            seen.add(server.name)
            if server.condition is not None:
                try:
                    parse_condition(server.condition)
                except ConditionError as exc:
                    problems.error(at, f"condition of MCP server {server.name!r}: {exc}", f"mcp_servers[{index}]")
