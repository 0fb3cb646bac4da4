"""`Project`: everything loaded from one project directory, immutable, plus tool selection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.project.conditions import evaluate_condition
from app.project.config import ProjectConfig
from app.project.connectors import ConnectorSpec
from app.project.models import AgentSpec, LLMAgentSpec
from app.project.problems import Problem
from app.project.tooldef import ToolDef
from app.project.topics import TopicSpec

if TYPE_CHECKING:
    from connic.core import Middleware, ToolHook


@dataclass(frozen=True)
class Project:
    """A loaded, valid project. Maps are read-only views; nothing here changes after load.

    `file_hashes` holds the sha256 of every file the loader read (paths relative to
    `root`, POSIX style) and `content_hash` one digest over them: two loads with the
    same `content_hash` describe the same project.
    """

    root: Path
    agents: Mapping[str, AgentSpec]
    schemas: Mapping[str, dict[str, Any]]
    topics: tuple[TopicSpec, ...]
    connectors: Mapping[str, ConnectorSpec]
    config: ProjectConfig
    file_hashes: Mapping[str, str]
    content_hash: str
    middleware: Mapping[str, Middleware] = field(default_factory=dict, compare=False)  # middleware/<agent>.py
    tool_hooks: Mapping[str, ToolHook] = field(default_factory=dict, compare=False)  # hooks/<agent>.py
    guardrails: Mapping[str, Callable[..., Any]] = field(default_factory=dict, compare=False)  # custom checks
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def agent(self, name: str) -> AgentSpec:
        """The agent called `name`; KeyError names the known agents."""
        try:
            return self.agents[name]
        except KeyError:
            raise KeyError(f"no agent {name!r} (known: {', '.join(sorted(self.agents))})") from None

    def tools_for(self, name: str) -> tuple[ToolDef, ...]:
        """Every tool of an agent, conditional ones included (see `select_tools`)."""
        return self.agent(name).resolved_tools

    def output_schema_for(self, name: str) -> dict[str, Any] | None:
        spec = self.agent(name)
        if isinstance(spec, LLMAgentSpec) and spec.output_schema is not None:
            return self.schemas[spec.output_schema]
        return None


def select_tools(agent: AgentSpec, input: Mapping[str, Any], context: Mapping[str, Any]) -> list[ToolDef]:
    """The tools the LLM may see for one run: unconditional ones and those whose condition holds."""
    return [
        tool
        for tool in agent.resolved_tools
        if tool.condition is None or evaluate_condition(tool.condition, input, context)
    ]
