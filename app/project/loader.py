"""`load_project`: read a project directory into one immutable `Project`, or report why not.

The load order is the dependency order: files → agents (with defaults) → schemas →
cross-agent checks → tools → middleware, tool hooks and custom guardrails → project-level
files. Connic's predefined tools are installed into `connic.tools` before the first
project module is imported (as soon as `connic` is, app/compat/runtime.py).
Every step appends to one problem list and the load fails only at the end, so a single
run reports every mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.compat.runtime import install_when_imported as install_connic_tools
from app.project import agent_checks
from app.project.agent_files import AgentSource, DefaultsCascade, discover_agent_files, load_agent
from app.project.agent_view import view_of
from app.project.connic_modules import check_connic_keys, load_agent_modules, load_guardrails
from app.project.files import ProjectFiles
from app.project.models import AgentSpec, LLMAgentSpec
from app.project.problems import Loc, Problem, Problems, ProjectError
from app.project.project import Project
from app.project.project_parts import load_config, load_connectors, load_topics
from app.project.schemas import load_schemas
from app.project.tool_import import ToolModules
from app.project.tool_refs import ToolResolver


class ProjectNotFoundError(ProjectError):
    """The path is missing or is not a project (no `agents/` folder): nothing to lint."""


@dataclass
class LoadState:
    """Everything one load produced, valid or not; the linter reads more of it than the loader."""

    root: Path
    problems: Problems
    files: ProjectFiles
    sources: list[AgentSource] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_schemas: set[str] = field(default_factory=set)
    resolver: ToolResolver | None = None
    project: Project | None = None


def _tool_digest(files: ProjectFiles) -> str:
    """Hash the tool sources first: the import package name depends on their content."""
    for path in files.discover("tools", (".py",)):
        files.read_bytes(path)
    return files.content_hash()


def collect(path: str | Path) -> LoadState:
    """Load as much of the project as possible; raise only `ProjectNotFoundError`."""
    root = Path(path)
    problems = Problems()
    if not root.is_dir():
        problems.error(Loc(str(path), 0, 0), "no such directory" if not root.exists() else "not a directory")
        raise ProjectNotFoundError(problems.items)
    if not (root / "agents").is_dir():
        problems.error(Loc(str(path), 0, 0), "not a Ferry project: no agents/ folder")
        raise ProjectNotFoundError(problems.items)
    install_connic_tools()  # before any project module runs `from connic.tools import ...`
    files = ProjectFiles(root, problems)
    state = LoadState(files.root, problems, files)
    state.resolver = ToolResolver(ToolModules(files.root, _tool_digest(files)))

    defaults = DefaultsCascade(files, problems)
    for agent_file in discover_agent_files(files, problems):
        source = load_agent(agent_file, files, defaults, problems)
        if source is not None:
            state.sources.append(source)
    state.schemas, broken = load_schemas(files, problems)

    views = [view_of(source) for source in state.sources]
    by_name = agent_checks.unique_names(views, problems)
    state.used_schemas = agent_checks.output_schemas(views, state.schemas, broken, problems)
    agent_checks.sequential_chains(by_name, problems)
    specs: dict[str, AgentSpec] = {}
    import_failures = agent_checks.ImportFailures()
    for view in views:
        tools = agent_checks.agent_tools(view, state.resolver, problems, import_failures)
        spec = view.source.spec
        if spec is not None and view.name is not None and by_name.get(view.name) is view:
            # A private attribute: pydantic allows it on a frozen model; every YAML field stays frozen.
            spec._resolved_tools = tools
            if isinstance(spec, LLMAgentSpec):
                spec._discoverable = agent_checks.agent_tools(
                    view, state.resolver, problems, import_failures, key="discoverable_tools"
                )
            specs[view.name] = spec

    import_failures.report(problems)
    middleware, hooks = load_agent_modules(files, set(by_name), problems)
    guardrails = load_guardrails(files, state.sources, problems)
    check_connic_keys(state.sources, problems)

    config = load_config(files, problems)
    topics = load_topics(files, problems)
    connectors = load_connectors(files, problems, set(by_name))

    if not problems.has_errors:
        state.project = Project(
            root=files.root,
            agents=MappingProxyType({name: specs[name] for name in sorted(specs)}),
            schemas=MappingProxyType(dict(sorted(state.schemas.items()))),
            topics=topics,
            connectors=MappingProxyType(dict(sorted(connectors.items()))),
            config=config,
            middleware=MappingProxyType(middleware),
            tool_hooks=MappingProxyType(hooks),
            guardrails=MappingProxyType(guardrails),
            file_hashes=MappingProxyType(dict(sorted(files.hashes.items()))),
            content_hash=files.content_hash(),
            warnings=tuple(dedupe(problems.sorted())),
        )
    return state


def dedupe(problems: list[Problem]) -> list[Problem]:
    """The same problem reached twice (e.g. a bad default inherited by ten agents) shows once."""
    return list(dict.fromkeys(problems))


def load_project(path: str | Path) -> Project:
    """Load a project; raise `ProjectError` carrying every problem if there is any error."""
    state = collect(path)
    if state.project is None:
        raise ProjectError(dedupe(state.problems.sorted()))
    return state.project
