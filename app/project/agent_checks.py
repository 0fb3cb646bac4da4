"""Checks that need the whole project: unique names, schema refs, chains, tools.

Each check reports at the position of the offending value and none stops the others.
They read `AgentView`s, so an agent that failed validation is still checked as far as
its data allows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.project.agent_view import AgentView
from app.project.conditions import ConditionError, parse_condition
from app.project.predefined_tools import expand, is_predefined, predefined_tool, unsupported
from app.project.problems import Loc, Problems
from app.project.schemas import schema_name_problem
from app.project.tool_import import ToolImportError
from app.project.tool_refs import ToolRefError, ToolResolver
from app.project.tooldef import ToolDef
from app.project.unsupported import unsupported_tool_ref
from app.project.validation import format_path
from app.project.yamlmarks import PathKey


def _at(view: AgentView, *path: PathKey) -> Loc:
    return view.source.shadow.find(path)[0].loc


def _written(view: AgentView, *path: PathKey) -> str:
    """The key path as the user wrote it (a merged tools list renumbers its entries)."""
    return format_path(view.source.shadow.written_path(path))


def unique_names(views: list[AgentView], problems: Problems) -> dict[str, AgentView]:
    """Agents by name; a second agent with a taken name is an error at its `name`."""
    by_name: dict[str, AgentView] = {}
    for view in views:
        if view.name is None:
            continue
        first = by_name.get(view.name)
        if first is not None:
            problems.error(
                _at(view, "name"), f"agent name {view.name!r} is already used by {first.source.file}", "name"
            )
            continue
        by_name[view.name] = view
    return by_name


def output_schemas(views: list[AgentView], schemas: dict[str, Any], broken: set[str], problems: Problems) -> set[str]:
    """Check every `output_schema` ref; return the names that are used."""
    used: set[str] = set()
    for view in views:
        name = view.output_schema
        if name is None:
            continue
        used.add(name)
        reason = schema_name_problem(name)
        if reason is None and name not in schemas and name not in broken:
            reason = f"no schema schemas/{name}.json"
        if reason is not None:
            problems.error(_at(view, "output_schema"), reason, "output_schema")
    return used


def sequential_chains(by_name: dict[str, AgentView], problems: Problems) -> None:
    """Every stage must exist; no chain may contain itself, directly or through another chain."""
    graph: dict[str, list[str]] = {}
    for name, view in by_name.items():
        if view.kind != "sequential":
            continue
        graph[name] = []
        for index, stage in view.stages:
            if stage not in by_name:
                problems.error(_at(view, "agents", index), f"no agent named {stage!r}", _written(view, "agents", index))
            elif by_name[stage].kind == "sequential":
                graph[name].append(stage)
    reported: set[frozenset[str]] = set()
    for start in sorted(graph):
        cycle = _cycle_from(start, graph)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            problems.error(
                _at(by_name[start], "agents"),
                "sequential chain contains itself: " + " → ".join((*cycle, cycle[0])),
                "agents",
            )


def _cycle_from(start: str, graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle through `start`, as the list of its members starting at `start`."""
    stack: list[list[str]] = [[start]]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        for nxt in graph.get(path[-1], []):
            if nxt == start:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


class ImportFailures:
    """Tool modules that raised on import, each with the refs that needed it.

    One broken module used by twenty refs is one mistake: it is reported once, at the
    line in `tools/` where it raised, naming every ref that used it.
    """

    def __init__(self) -> None:
        self._uses: dict[ToolImportError, list[str]] = {}

    def add(self, failure: ToolImportError, used_at: Loc, key_path: str, ref: str) -> None:
        self._uses.setdefault(failure, []).append(f"{used_at} {key_path} ({ref})")

    def report(self, problems: Problems) -> None:
        for failure, uses in self._uses.items():
            assert failure.raised_at is not None  # only failures with a position are collected
            problems.error(failure.raised_at, f"{failure} — used by {', '.join(dict.fromkeys(uses))}")


def _ref_problem(
    exc: ToolRefError, at: Loc, key_path: str, ref: str, problems: Problems, failures: ImportFailures
) -> None:
    """Report a ref that failed: at the ref, and at the tool's def line when the function is at fault."""
    if exc.import_failure is not None:
        failures.add(exc.import_failure, at, key_path, ref)
        return
    for reason in exc.reasons:
        problems.error(at, reason, key_path)
        if exc.defined_at is not None:
            problems.error(exc.defined_at, reason)


def agent_tools(
    view: AgentView, resolver: ToolResolver, problems: Problems, failures: ImportFailures, key: str = "tools"
) -> tuple[ToolDef, ...]:
    """Resolve an agent's tools (or a tool agent's function) and check bare-name uniqueness;
    `key="discoverable_tools"` resolves the tools it finds through search_tools instead."""
    if view.tool_name is not None and key == "tools":
        try:
            return (resolver.tool_agent_function(view.tool_name),)
        except ToolRefError as exc:
            _ref_problem(exc, _at(view, "tool_name"), "tool_name", view.tool_name, problems, failures)
            return ()
    tools: list[ToolDef] = []
    owner: dict[str, tuple[int, str, int]] = {}  # bare name → (entry index, entry ref, position in tools)
    for index, entry in view.tools if key == "tools" else view.discoverable:
        key_path = _written(view, key, index)
        if entry.condition is not None:
            try:
                parse_condition(entry.condition)
            except ConditionError as exc:
                problems.error(_at(view, key, index, entry.ref), f"condition of {entry.ref!r}: {exc}", key_path)
                continue
        missing = unsupported_tool_ref(entry.ref)
        if missing is not None:
            problems.warning(_at(view, key, index), missing, key_path)
            continue
        if is_predefined(entry.ref):
            resolved = _predefined(entry.ref, _at(view, key, index), key_path, problems)
        else:
            try:
                resolved = resolver.resolve(entry.ref)
            except ToolRefError as exc:
                _ref_problem(exc, _at(view, key, index), key_path, entry.ref, problems, failures)
                continue
        for tool in resolved:
            if tool.name in owner and tool.ref == tools[owner[tool.name][2]].ref:
                # The same function twice (e.g. `crm.*` and `crm.lookup` from defaults): keep the first.
                if "*" not in entry.ref and "*" not in owner[tool.name][1]:
                    problems.warning(_at(view, key, index), f"{tool.ref} is listed twice", key_path)
                continue
            if tool.name in owner:
                first_index, first_ref, _ = owner[tool.name]
                first_written = _written(view, key, first_index)
                problems.error(
                    _at(view, key, index),
                    f"tool name {tool.name!r} ({tool.ref}) is already given by {first_written} ({first_ref}); "
                    "the LLM sees bare function names, which must be unique per agent",
                    key_path,
                )
                continue
            owner[tool.name] = (index, entry.ref, len(tools))
            tools.append(replace(tool, condition=entry.condition) if entry.condition else tool)
    return tuple(tools)


def _predefined(ref: str, at: Loc, key_path: str, problems: Problems) -> list[ToolDef]:
    """Connic's predefined tools a bare name or wildcard stands for; the ones Ferry cannot
    run are a warning each, saying what the LLM will not get."""
    tools: list[ToolDef] = []
    for name in expand(ref):
        refused = unsupported(name)
        if refused is not None:
            if "*" not in ref:
                problems.warning(at, refused, key_path)
            continue
        tools.append(predefined_tool(name))
    if not tools and "*" in ref:
        problems.warning(at, f"{ref} matches only predefined tools Ferry cannot run (browser tools)", key_path)
    return tools
